/* Parsing and validation of Reface's settings (see core/config.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

const char config_help[] =
    "  socket      unix:/path or host:port to bind; empty: use the\n"
    "              listening socket inherited on fd 0 (spawn-fcgi)\n"
    "              (a socket systemd passes wins over both)\n"
    "  socket_mode octal permissions of a unix socket (default 0660)\n"
    "  backlog     listen backlog (default 1024)\n"
    "  workers     worker processes (default 0: one per core)\n"
    "  model       TorchScript file (default models/reface.pt)\n"
    "  card        model card JSON (default: model path with .json)\n"
    "  threads     torch threads per worker (default 1)\n"
    "  max_body    request body limit in bytes (default 10485760)\n"
    "  max_pixels  refuse images over width*height (default 40000000)\n"
    "  max_parts   multipart parts per request (default 16)\n"
    "  max_header  bytes of one part's headers (default 8192)\n"
    "  crop        centred crop before the model, fraction of each side,\n"
    "              0.1..1 (default 0.8, chosen with make eval); used\n"
    "              when detection is off\n"
    "  detector    face detector TorchScript file (default\n"
    "              models/detector.pt, used when it exists; empty: no\n"
    "              detection, the centred crop as the one face)\n"
    "  detect_score  detections scoring above this are faces, 0.05..0.99\n"
    "              (default 0.5, chosen with make eval)\n"
    "  face_margin  fraction of a face box's width and height added on\n"
    "              each side before cropping, 0..1 (default 0, chosen\n"
    "              with make eval)\n"
    "  detect_retry  1: when no face is found, look again with the image\n"
    "              shrunk into the middle of the detector's input, for\n"
    "              faces that fill the frame; 0: one look (default 1)\n"
    "  log_level   error, warn, notice, info or debug (default info)\n"
    "  user        when started as root, switch to this user after\n"
    "              binding the socket and reading the model\n"
    "  group       group for that switch and for the unix socket\n"
    "              (default: the user's primary group)\n"
    "  socket_group  group owning a unix socket we bind (chgrp)\n"
    "  log_file    append logs to this file instead of stderr;\n"
    "              SIGUSR1 reopens it (for logrotate)\n"
    "  request_timeout  seconds a request may take before the master\n"
    "              kills its worker (default 30; keep it below nginx's\n"
    "              fastcgi_read_timeout, 60 s as shipped; 0 = none)\n"
    "  queue_timeout  a request nginx stamped (REQUEST_START) more\n"
    "              than this many seconds before a worker takes it is\n"
    "              answered 503 at once (default 30; 0 = never)\n"
    "  max_requests  recycle a worker after this many requests\n"
    "              (default 0: never)\n"
    "  max_requests_jitter  add 0..N to max_requests per worker, so\n"
    "              workers do not all restart at once (default 0)\n"
    "  crash_storm_exits, crash_storm_window  this many abnormal worker\n"
    "              exits within that many seconds make the master back\n"
    "              off respawning, 0.5 s doubling to 30 s (default 5\n"
    "              in 10 s)\n"
    "  stop_timeout  seconds a graceful stop (SIGTERM) waits for the\n"
    "              requests in flight before it kills (default 30)\n"
    "  sandbox     on: each worker, once its model is loaded, installs a\n"
    "              seccomp filter: exec, new sockets and opening files\n"
    "              for writing fail with EPERM; off: no filter\n"
    "              (default on)\n";

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->socket_mode = 0660;
    c->backlog = 1024;
    c->workers = 0;
    snprintf(c->model, sizeof(c->model), "models/reface.pt");
    c->threads = 1;
    c->max_body = 10u * 1024 * 1024;
    c->max_pixels = 40000000;
    c->max_parts = 16;
    c->max_header = 8192;
    c->crop = 0.8;
    snprintf(c->detector, sizeof(c->detector), "models/detector.pt");
    c->detect_score = 0.5;
    c->face_margin = 0.0;
    c->detect_retry = 1;
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->request_timeout = 30.0;
    c->queue_timeout = 30.0;
    c->crash_storm_exits = 5;
    c->crash_storm_window = 10.0;
    c->stop_timeout = 30.0;
    c->sandbox = 1;
}

/* Parses a number (seconds, a fraction) in lo..hi; -1 if it is not one. */
static int parse_seconds(const char *s, double lo, double hi, double *out)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(d >= lo) || !(d <= hi)) {
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_ll(const char *s, int base, long long lo, long long hi,
                    long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, base);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* on/off, yes/no, true/false, 1/0; -1 if none of those. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = { "on", "yes", "true", "1" };
    static const char *const no[] = { "off", "no", "false", "0" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            return 1;
        }
        if (strcmp(s, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

static int set_string(char *dst, size_t dstsz, const char *value)
{
    size_t n = strlen(value);

    if (n >= dstsz) {
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

enum rf_result config_set(struct config *c, const char *key,
                          const char *value, char *err, size_t errlen)
{
    long long v;
    int bad = 0;

    if (strcmp(key, "socket") == 0) {
        bad = set_string(c->socket, sizeof(c->socket), value);
    } else if (strcmp(key, "socket_mode") == 0) {
        bad = parse_ll(value, 8, 0, 0777, &v);
        if (!bad) {
            c->socket_mode = (int)v;
        }
    } else if (strcmp(key, "backlog") == 0) {
        bad = parse_ll(value, 10, 1, 65535, &v);
        if (!bad) {
            c->backlog = (int)v;
        }
    } else if (strcmp(key, "workers") == 0) {
        bad = parse_ll(value, 10, 0, 256, &v);
        if (!bad) {
            c->workers = (int)v;
        }
    } else if (strcmp(key, "model") == 0) {
        bad = !*value || set_string(c->model, sizeof(c->model), value);
    } else if (strcmp(key, "card") == 0) {
        bad = set_string(c->card, sizeof(c->card), value);
    } else if (strcmp(key, "threads") == 0) {
        bad = parse_ll(value, 10, 1, 64, &v);
        if (!bad) {
            c->threads = (int)v;
        }
    } else if (strcmp(key, "max_body") == 0) {
        bad = parse_ll(value, 10, 1024, 1LL << 30, &v);
        if (!bad) {
            c->max_body = (size_t)v;
        }
    } else if (strcmp(key, "max_pixels") == 0) {
        bad = parse_ll(value, 10, 1, 1LL << 30, &v);
        if (!bad) {
            c->max_pixels = v;
        }
    } else if (strcmp(key, "max_parts") == 0) {
        bad = parse_ll(value, 10, 1, 10000, &v);
        if (!bad) {
            c->max_parts = (size_t)v;
        }
    } else if (strcmp(key, "max_header") == 0) {
        bad = parse_ll(value, 10, 64, 1 << 20, &v);
        if (!bad) {
            c->max_header = (size_t)v;
        }
    } else if (strcmp(key, "crop") == 0) {
        char *end;
        double d;

        errno = 0;
        d = strtod(value, &end);
        bad = errno != 0 || end == value || *end != '\0' || !(d >= 0.1) ||
              !(d <= 1.0);
        if (!bad) {
            c->crop = d;
        }
    } else if (strcmp(key, "detector") == 0) {
        bad = set_string(c->detector, sizeof(c->detector), value);
    } else if (strcmp(key, "detect_score") == 0) {
        bad = parse_seconds(value, 0.05, 0.99, &c->detect_score);
    } else if (strcmp(key, "face_margin") == 0) {
        bad = parse_seconds(value, 0.0, 1.0, &c->face_margin);
    } else if (strcmp(key, "detect_retry") == 0) {
        bad = parse_ll(value, 10, 0, 1, &v);
        if (!bad) {
            c->detect_retry = (int)v;
        }
    } else if (strcmp(key, "log_level") == 0) {
        bad = rlog_level_parse(value) < 0 ||
              set_string(c->log_level, sizeof(c->log_level), value);
    } else if (strcmp(key, "user") == 0) {
        bad = set_string(c->user, sizeof(c->user), value);
    } else if (strcmp(key, "group") == 0) {
        bad = set_string(c->group, sizeof(c->group), value);
    } else if (strcmp(key, "socket_group") == 0) {
        bad = set_string(c->socket_group, sizeof(c->socket_group), value);
    } else if (strcmp(key, "log_file") == 0) {
        bad = set_string(c->log_file, sizeof(c->log_file), value);
    } else if (strcmp(key, "request_timeout") == 0) {
        bad = parse_seconds(value, 0.0, 86400.0, &c->request_timeout);
    } else if (strcmp(key, "queue_timeout") == 0) {
        bad = parse_seconds(value, 0.0, 86400.0, &c->queue_timeout);
    } else if (strcmp(key, "max_requests") == 0) {
        bad = parse_ll(value, 10, 0, 1LL << 40, &v);
        if (!bad) {
            c->max_requests = (long)v;
        }
    } else if (strcmp(key, "max_requests_jitter") == 0) {
        bad = parse_ll(value, 10, 0, 1LL << 40, &v);
        if (!bad) {
            c->max_requests_jitter = (long)v;
        }
    } else if (strcmp(key, "crash_storm_exits") == 0) {
        bad = parse_ll(value, 10, 1, 1000, &v);
        if (!bad) {
            c->crash_storm_exits = (int)v;
        }
    } else if (strcmp(key, "crash_storm_window") == 0) {
        bad = parse_seconds(value, 0.1, 3600.0, &c->crash_storm_window);
    } else if (strcmp(key, "stop_timeout") == 0) {
        bad = parse_seconds(value, 0.0, 3600.0, &c->stop_timeout);
    } else if (strcmp(key, "sandbox") == 0) {
        int b = parse_bool(value);

        bad = b < 0;
        if (!bad) {
            c->sandbox = b;
        }
    } else {
        snprintf(err, errlen, "unknown setting \"%s\"", key);
        return RF_ERR_CONFIG;
    }

    if (bad) {
        snprintf(err, errlen, "bad value \"%s\" for \"%s\"", value, key);
        return RF_ERR_CONFIG;
    }
    return RF_OK;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
                       end[-1] == '\n' || end[-1] == '\r')) {
        *--end = '\0';
    }
    return s;
}

enum rf_result config_load_file(struct config *c, const char *path,
                                char *err, size_t errlen)
{
    char line[CONFIG_PATH_MAX + 64];
    char detail[256];
    enum rf_result r = RF_OK;
    unsigned lineno = 0;
    FILE *f;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open config \"%s\": %s", path,
                 strerror(errno));
        return RF_ERR_CONFIG;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *value, *eq, *hash;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%u: line too long", path, lineno);
            r = RF_ERR_CONFIG;
            break;
        }
        hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        key = trim(line);
        if (*key == '\0') {
            continue;
        }
        eq = strchr(key, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%u: expected key = value", path,
                     lineno);
            r = RF_ERR_CONFIG;
            break;
        }
        *eq = '\0';
        value = trim(eq + 1);
        key = trim(key);
        r = config_set(c, key, value, detail, sizeof(detail));
        if (r != RF_OK) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, detail);
            break;
        }
    }
    fclose(f);
    return r;
}

void config_card_path(const struct config *c, char *out, size_t outsz)
{
    const char *dot, *slash;
    size_t stem;

    if (c->card[0] != '\0') {
        snprintf(out, outsz, "%s", c->card);
        return;
    }
    dot = strrchr(c->model, '.');
    slash = strrchr(c->model, '/');
    stem = (dot != NULL && (slash == NULL || dot > slash))
               ? (size_t)(dot - c->model) : strlen(c->model);
    snprintf(out, outsz, "%.*s.json", (int)stem, c->model);
}
