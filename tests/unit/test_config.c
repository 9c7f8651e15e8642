/*
 * Tests of core/config: the defaults, config_set with a good and a bad
 * value for every key (a refused value leaves the config untouched), the
 * files in the folder given as argv[1], and config_card_path.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

static const char *dir = "tests/unit/config";

static void test_defaults(void)
{
    struct config c;

    memset(&c, 0x5a, sizeof(c));
    config_defaults(&c);
    CHECK_STR_EQ(c.socket, "");
    CHECK_INT_EQ(c.socket_mode, 0660);
    CHECK_INT_EQ(c.backlog, 1024);
    CHECK_INT_EQ(c.workers, 0);
    CHECK_STR_EQ(c.model, "models/reface.pt");
    CHECK_STR_EQ(c.card, "");
    CHECK_INT_EQ(c.threads, 1);
    CHECK_INT_EQ(c.max_body, 10 * 1024 * 1024);
    CHECK_INT_EQ(c.max_pixels, 40000000);
    CHECK_INT_EQ(c.max_parts, 16);
    CHECK_INT_EQ(c.max_header, 8192);
    CHECK_NEAR(c.crop, 0.8, 0.0);
    CHECK_STR_EQ(c.detector, "models/detector.pt");
    CHECK_NEAR(c.detect_score, 0.5, 0.0);
    CHECK_NEAR(c.face_margin, 0.0, 0.0);
    CHECK_INT_EQ(c.detect_retry, 1);
    CHECK_STR_EQ(c.log_level, "info");
    CHECK_STR_EQ(c.user, "");
    CHECK_STR_EQ(c.group, "");
}

/* Sets key to value on a default config and expects it to be accepted. */
static void good(const char *key, const char *value, struct config *c)
{
    char err[256] = "";
    enum rf_result r;

    config_defaults(c);
    r = config_set(c, key, value, err, sizeof(err));
    if (r != RF_OK) {
        fprintf(stderr, "  %s = \"%s\" refused: %s\n", key, value, err);
    }
    CHECK_INT_EQ(r, RF_OK);
}

/* Expects the value refused, the reason to name key and value, and the
 * config to be byte for byte what it was. */
static void bad(const char *key, const char *value)
{
    struct config c, before;
    char err[1024] = "";
    enum rf_result r;

    config_defaults(&c);
    memcpy(&before, &c, sizeof(c));
    r = config_set(&c, key, value, err, sizeof(err));
    if (r != RF_ERR_CONFIG) {
        fprintf(stderr, "  %s = \"%.40s\" was accepted\n", key, value);
    }
    CHECK_INT_EQ(r, RF_ERR_CONFIG);
    CHECK(memcmp(&c, &before, sizeof(c)) == 0);
    CHECK(strstr(err, key) != NULL);
}

static void test_socket(void)
{
    struct config c;
    char big[CONFIG_PATH_MAX + 10];

    good("socket", "unix:/run/reface.sock", &c);
    CHECK_STR_EQ(c.socket, "unix:/run/reface.sock");
    good("socket", "127.0.0.1:9000", &c);
    CHECK_STR_EQ(c.socket, "127.0.0.1:9000");
    good("socket", "", &c);
    CHECK_STR_EQ(c.socket, "");
    /* CONFIG_PATH_MAX - 1 bytes fit, CONFIG_PATH_MAX do not. */
    memset(big, 's', sizeof(big));
    big[CONFIG_PATH_MAX - 1] = '\0';
    good("socket", big, &c);
    CHECK_INT_EQ(strlen(c.socket), CONFIG_PATH_MAX - 1);
    big[CONFIG_PATH_MAX - 1] = 's';
    big[CONFIG_PATH_MAX] = '\0';
    bad("socket", big);
}

static void test_socket_mode(void)
{
    struct config c;

    good("socket_mode", "0600", &c);
    CHECK_INT_EQ(c.socket_mode, 0600);
    good("socket_mode", "777", &c);   /* octal even without the 0 */
    CHECK_INT_EQ(c.socket_mode, 0777);
    good("socket_mode", "0", &c);
    CHECK_INT_EQ(c.socket_mode, 0);
    bad("socket_mode", "1000");
    bad("socket_mode", "0680");       /* 8 is not an octal digit */
    bad("socket_mode", "-1");
    bad("socket_mode", "rw");
    bad("socket_mode", "");
}

static void test_backlog(void)
{
    struct config c;

    good("backlog", "1", &c);
    CHECK_INT_EQ(c.backlog, 1);
    good("backlog", "65535", &c);
    CHECK_INT_EQ(c.backlog, 65535);
    bad("backlog", "0");
    bad("backlog", "65536");
    bad("backlog", "12a");
    bad("backlog", "99999999999999999999999");
}

static void test_workers(void)
{
    struct config c;

    good("workers", "0", &c);
    CHECK_INT_EQ(c.workers, 0);
    good("workers", "256", &c);
    CHECK_INT_EQ(c.workers, 256);
    bad("workers", "257");
    bad("workers", "-1");
    bad("workers", "4 ");
    bad("workers", "four");
}

static void test_model_and_card(void)
{
    struct config c;

    good("model", "/srv/m.pt", &c);
    CHECK_STR_EQ(c.model, "/srv/m.pt");
    bad("model", "");
    good("card", "/srv/m.json", &c);
    CHECK_STR_EQ(c.card, "/srv/m.json");
    good("card", "", &c);              /* "": derive it from the model */
    CHECK_STR_EQ(c.card, "");
}

static void test_threads(void)
{
    struct config c;

    good("threads", "1", &c);
    CHECK_INT_EQ(c.threads, 1);
    good("threads", "64", &c);
    CHECK_INT_EQ(c.threads, 64);
    bad("threads", "0");
    bad("threads", "65");
    bad("threads", "2.5");
}

static void test_limits(void)
{
    struct config c;

    good("max_body", "1024", &c);
    CHECK_INT_EQ(c.max_body, 1024);
    good("max_body", "1073741824", &c);
    CHECK_INT_EQ(c.max_body, 1073741824);
    bad("max_body", "1023");
    bad("max_body", "1073741825");
    bad("max_body", "10M");

    good("max_pixels", "1", &c);
    CHECK_INT_EQ(c.max_pixels, 1);
    good("max_pixels", "1073741824", &c);
    CHECK_INT_EQ(c.max_pixels, 1073741824);
    bad("max_pixels", "0");
    bad("max_pixels", "1073741825");

    good("max_parts", "1", &c);
    CHECK_INT_EQ(c.max_parts, 1);
    good("max_parts", "10000", &c);
    CHECK_INT_EQ(c.max_parts, 10000);
    bad("max_parts", "0");
    bad("max_parts", "10001");

    good("max_header", "64", &c);
    CHECK_INT_EQ(c.max_header, 64);
    good("max_header", "1048576", &c);
    CHECK_INT_EQ(c.max_header, 1048576);
    bad("max_header", "63");
    bad("max_header", "1048577");
}

static void test_crop(void)
{
    struct config c;

    good("crop", "0.1", &c);
    CHECK_NEAR(c.crop, 0.1, 1e-12);
    good("crop", "1", &c);
    CHECK_NEAR(c.crop, 1.0, 0.0);
    good("crop", "0.65", &c);
    CHECK_NEAR(c.crop, 0.65, 1e-12);
    bad("crop", "0.09");
    bad("crop", "1.01");
    bad("crop", "0");
    bad("crop", "nan");
    bad("crop", "inf");
    bad("crop", "0.5x");
    bad("crop", "");
}

static void test_detection(void)
{
    struct config c;

    good("detector", "", &c);
    CHECK_STR_EQ(c.detector, "");
    good("detector", "/opt/reface/models/detector.pt", &c);
    CHECK_STR_EQ(c.detector, "/opt/reface/models/detector.pt");
    good("detect_score", "0.3", &c);
    CHECK_NEAR(c.detect_score, 0.3, 1e-12);
    bad("detect_score", "0");
    bad("detect_score", "1");
    bad("detect_score", "0.5.");
    good("face_margin", "0", &c);
    good("face_margin", "0.25", &c);
    CHECK_NEAR(c.face_margin, 0.25, 1e-12);
    bad("face_margin", "-0.1");
    bad("face_margin", "1.5");
    good("detect_retry", "0", &c);
    CHECK_INT_EQ(c.detect_retry, 0);
    bad("detect_retry", "2");
    bad("detect_retry", "yes");
}

static void test_log_level(void)
{
    static const char *const levels[] = { "error", "warn", "notice", "info",
                                          "debug" };
    struct config c;

    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        good("log_level", levels[i], &c);
        CHECK_STR_EQ(c.log_level, levels[i]);
    }
    bad("log_level", "verbose");
    bad("log_level", "");
}

static void test_user_group(void)
{
    struct config c;
    char big[sizeof(c.user) + 1];

    good("user", "reface", &c);
    CHECK_STR_EQ(c.user, "reface");
    good("group", "www-data", &c);
    CHECK_STR_EQ(c.group, "www-data");
    good("group", "", &c);
    CHECK_STR_EQ(c.group, "");
    memset(big, 'u', sizeof(big));
    big[sizeof(big) - 1] = '\0';       /* 64 bytes: one too many */
    bad("user", big);
    bad("group", big);
}

/* The process-management keys of README "Operations". */
static void test_operations(void)
{
    struct config c;
    char big[CONFIG_PATH_MAX + 10];

    config_defaults(&c);
    CHECK_STR_EQ(c.socket_group, "");
    CHECK_STR_EQ(c.log_file, "");
    CHECK_NEAR(c.request_timeout, 30.0, 0.0);
    CHECK_NEAR(c.queue_timeout, 30.0, 0.0);
    CHECK_INT_EQ(c.max_requests, 0);
    CHECK_INT_EQ(c.max_requests_jitter, 0);
    CHECK_INT_EQ(c.crash_storm_exits, 5);
    CHECK_NEAR(c.crash_storm_window, 10.0, 0.0);
    CHECK_NEAR(c.stop_timeout, 30.0, 0.0);

    good("socket_group", "www-data", &c);
    CHECK_STR_EQ(c.socket_group, "www-data");
    good("log_file", "/var/log/reface/reface.log", &c);
    CHECK_STR_EQ(c.log_file, "/var/log/reface/reface.log");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bad("log_file", big);
    good("request_timeout", "2.5", &c);
    CHECK_NEAR(c.request_timeout, 2.5, 0.0);
    good("request_timeout", "0", &c);
    CHECK_NEAR(c.request_timeout, 0.0, 0.0);
    good("queue_timeout", "12.5", &c);
    CHECK_NEAR(c.queue_timeout, 12.5, 0.0);
    good("queue_timeout", "0", &c);
    CHECK_NEAR(c.queue_timeout, 0.0, 0.0);
    bad("request_timeout", "-1");
    bad("request_timeout", "30s");
    bad("request_timeout", "nan");
    bad("queue_timeout", "-0.5");
    bad("queue_timeout", "soon");
    good("max_requests", "500", &c);
    CHECK_INT_EQ(c.max_requests, 500);
    bad("max_requests", "-1");
    good("max_requests_jitter", "50", &c);
    CHECK_INT_EQ(c.max_requests_jitter, 50);
    bad("max_requests_jitter", "x");
    good("crash_storm_exits", "1", &c);
    CHECK_INT_EQ(c.crash_storm_exits, 1);
    bad("crash_storm_exits", "0");
    bad("crash_storm_exits", "1001");
    good("crash_storm_window", "0.5", &c);
    CHECK_NEAR(c.crash_storm_window, 0.5, 0.0);
    bad("crash_storm_window", "0");
    good("stop_timeout", "1", &c);
    CHECK_NEAR(c.stop_timeout, 1.0, 0.0);
    bad("stop_timeout", "-0.5");
    bad("stop_timeout", "3601");
}

static void test_sandbox(void)
{
    static const char *const on[] = { "on", "yes", "true", "1" };
    static const char *const off[] = { "off", "no", "false", "0" };
    struct config c;

    config_defaults(&c);
    CHECK_INT_EQ(c.sandbox, 1);
    for (int i = 0; i < 4; i++) {
        good("sandbox", off[i], &c);
        CHECK_INT_EQ(c.sandbox, 0);
        good("sandbox", on[i], &c);
        CHECK_INT_EQ(c.sandbox, 1);
    }
    bad("sandbox", "");
    bad("sandbox", "2");
    bad("sandbox", "On ");
    bad("sandbox", "disabled");
}

static void test_unknown_key(void)
{
    struct config c, before;
    char err[256] = "";

    config_defaults(&c);
    memcpy(&before, &c, sizeof(c));
    CHECK_INT_EQ(config_set(&c, "wrokers", "2", err, sizeof(err)),
                 RF_ERR_CONFIG);
    CHECK(strstr(err, "wrokers") != NULL);
    CHECK(memcmp(&c, &before, sizeof(c)) == 0);
    CHECK_INT_EQ(config_set(&c, "", "2", err, sizeof(err)), RF_ERR_CONFIG);
    CHECK_INT_EQ(config_set(&c, "Workers", "2", err, sizeof(err)),
                 RF_ERR_CONFIG);
}

static enum rf_result load(const char *name, struct config *c, char *err,
                           size_t errlen, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    config_defaults(c);
    err[0] = '\0';
    return config_load_file(c, path, err, errlen);
}

static void test_file_good(void)
{
    struct config c;
    char err[1024], path[600];
    enum rf_result r = load("good.conf", &c, err, sizeof(err), path,
                            sizeof(path));

    if (r != RF_OK) {
        fprintf(stderr, "  %s\n", err);
    }
    CHECK_INT_EQ(r, RF_OK);
    CHECK_INT_EQ(c.workers, 4);
    CHECK_STR_EQ(c.socket, "unix:/run/reface.sock");
    CHECK_INT_EQ(c.threads, 2);          /* tabs and a trailing comment */
    CHECK_INT_EQ(c.max_body, 2048);      /* a CRLF line ending */
    CHECK_NEAR(c.crop, 0.5, 0.0);
    CHECK_STR_EQ(c.log_level, "debug");
    CHECK_STR_EQ(c.card, "/etc/reface/card.json");
    CHECK_STR_EQ(c.model, "models/other.pt");
    CHECK_INT_EQ(c.socket_mode, 0600);
    CHECK_INT_EQ(c.backlog, 64);
    CHECK_INT_EQ(c.max_pixels, 1000000);
    CHECK_INT_EQ(c.max_parts, 3);
    CHECK_INT_EQ(c.max_header, 512);
}

/* The error starts with "path:line:" for each kind of bad line. */
static void expect_bad_file(const char *name, unsigned line,
                            const char *words)
{
    struct config c;
    char err[1024], path[600], prefix[640];
    enum rf_result r = load(name, &c, err, sizeof(err), path, sizeof(path));

    fprintf(stderr, "  %s -> %s\n", name, err);
    CHECK_INT_EQ(r, RF_ERR_CONFIG);
    snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
    CHECK(strstr(err, words) != NULL);
}

static void test_file_bad_lines(void)
{
    expect_bad_file("no_equals.conf", 3, "key = value");
    expect_bad_file("bad_value.conf", 4, "\"threads\"");
    expect_bad_file("unknown_key.conf", 2, "\"wrokers\"");
    expect_bad_file("long_line.conf", 2, "too long");
}

static void test_file_missing(void)
{
    struct config c;
    char err[1024], path[600];

    CHECK_INT_EQ(load("no_such.conf", &c, err, sizeof(err), path,
                      sizeof(path)), RF_ERR_CONFIG);
    CHECK(strstr(err, "no_such.conf") != NULL);
    CHECK(strstr(err, "No such file") != NULL);
}

static void card_path(const char *model, const char *card, const char *want)
{
    struct config c;
    char out[CONFIG_PATH_MAX + 8];

    config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s", model);
    snprintf(c.card, sizeof(c.card), "%s", card);
    config_card_path(&c, out, sizeof(out));
    CHECK_STR_EQ(out, want);
}

static void test_card_path(void)
{
    struct config c;
    char small[8];

    card_path("models/faceapi.pt", "", "models/faceapi.json");
    card_path("/x/y.tar.pt", "", "/x/y.tar.json");
    card_path("a.b/model", "", "a.b/model.json");   /* dot in a folder */
    card_path("model", "", "model.json");
    card_path(".hidden", "", ".json");
    card_path("models/faceapi.pt", "/etc/card.json", "/etc/card.json");

    /* A short buffer is truncated, still terminated. */
    config_defaults(&c);
    config_card_path(&c, small, sizeof(small));
    CHECK_STR_EQ(small, "models/");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        dir = argv[1];
    }
    RUN(test_defaults);
    RUN(test_socket);
    RUN(test_socket_mode);
    RUN(test_backlog);
    RUN(test_workers);
    RUN(test_model_and_card);
    RUN(test_threads);
    RUN(test_limits);
    RUN(test_crop);
    RUN(test_detection);
    RUN(test_log_level);
    RUN(test_user_group);
    RUN(test_operations);
    RUN(test_sandbox);
    RUN(test_unknown_key);
    RUN(test_file_good);
    RUN(test_file_bad_lines);
    RUN(test_file_missing);
    RUN(test_card_path);
    return check_summary("config");
}
