/*
 * Tests of core/multipart: direct checks of mp_boundary, the limits and the
 * callback contract, then every data-driven case in the folder given as
 * argv[1] (see tests/unit/multipart/gen_cases.py for the case format).
 */
#define _POSIX_C_SOURCE 200809L /* opendir, strdup */

#include "core/multipart.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/unit/check.h"

#define CT "multipart/form-data; boundary=XbOuNdArY"
#define DELIM "--XbOuNdArY"

static const struct mp_limits default_limits = { 16, 1024 };

/* A heap copy of exactly n bytes, so ASan sees any read past the body. */
static unsigned char *dup_body(const void *src, size_t n)
{
    unsigned char *p = malloc(n > 0 ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(p, src, n);
    return p;
}

static enum rf_result find_in(const char *text, const struct mp_limits *lim,
                              const char *name, struct mp_part *out)
{
    size_t n = strlen(text);
    unsigned char *body = dup_body(text, n);
    char err[128];
    enum rf_result rc;

    rc = mp_find(body, n, "XbOuNdArY", lim, name, out, err, sizeof err);
    free(body);
    /* out now points into freed memory: callers only look at lengths. */
    return rc;
}

static void test_boundary_accepts(void)
{
    char b[MP_BOUNDARY_SIZE];
    char b70[80], ct70[120];

    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=abc", b,
                             sizeof b), RF_OK);
    CHECK_STR_EQ(b, "abc");
    CHECK_INT_EQ(mp_boundary("multipart/form-data;boundary=\"a b\"", b,
                             sizeof b), RF_OK);
    CHECK_STR_EQ(b, "a b");
    CHECK_INT_EQ(mp_boundary("  Multipart/Form-Data ; Boundary=x ; ", b,
                             sizeof b), RF_OK);
    CHECK_STR_EQ(b, "x");
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=\"q\\\"\"", b,
                             sizeof b), RF_ERR_BAD_REQUEST); /* '"' */
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=\"\\a\\b\"", b,
                             sizeof b), RF_OK);
    CHECK_STR_EQ(b, "ab");
    CHECK_INT_EQ(mp_boundary("multipart/form-data; charset=\"a;b\"; "
                             "boundary=z", b, sizeof b), RF_OK);
    CHECK_STR_EQ(b, "z");
    CHECK_INT_EQ(mp_boundary("multipart/form-data;\tboundary=y\t", b,
                             sizeof b), RF_OK);
    CHECK_STR_EQ(b, "y");

    memset(b70, 'k', 70);
    b70[70] = '\0';
    snprintf(ct70, sizeof ct70, "multipart/form-data; boundary=%s", b70);
    CHECK_INT_EQ(mp_boundary(ct70, b, sizeof b), RF_OK);
    CHECK_STR_EQ(b, b70);

    /* One more is over RFC 2046, whatever the buffer size. */
    memset(b70, 'k', 71);
    b70[71] = '\0';
    snprintf(ct70, sizeof ct70, "multipart/form-data; boundary=%s", b70);
    CHECK_INT_EQ(mp_boundary(ct70, b70, sizeof b70), RF_ERR_BAD_REQUEST);
}

static void test_boundary_rejects(void)
{
    static const char *const bad[] = {
        "",
        "multipart/form-data",
        "multipart/form-data;",
        "multipart/form-data; boundary",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=\"a \"",
        "multipart/form-data; boundary=a@b",
        "multipart/form-data; boundary=a\"b\"",
        "multipart/form-data; boundary=\"a\"b",
        "multipart/form-data; boundary=a b",
        "multipart/form-data; boundary=a; boundary=a",
        "multipart/form-data; boundary = a",
        "multipart/form-data; =a; boundary=b",
        "multipart/form-data boundary=a",
        "multipart/form-dat; boundary=a",
        "multipart/mixed; boundary=a",
        "text/plain; boundary=a",
        "multipart/form-data; boundary=\"a\x01\"",
    };
    char b[MP_BOUNDARY_SIZE];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b[0] = 'x';
        if (mp_boundary(bad[i], b, sizeof b) != RF_ERR_BAD_REQUEST) {
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
            CHECK(false);
        }
        CHECK_STR_EQ(b, "");
    }
    CHECK_INT_EQ(mp_boundary(NULL, b, sizeof b), RF_ERR_BAD_REQUEST);
    CHECK_STR_EQ(b, "");
}

static void test_boundary_out_size(void)
{
    char b[8];

    /* "abcd" needs five bytes with its NUL. */
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=abcd", b, 4),
                 RF_ERR_BAD_REQUEST);
    CHECK_STR_EQ(b, "");
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=abcd", b, 5),
                 RF_OK);
    CHECK_STR_EQ(b, "abcd");
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=abcd", NULL, 5),
                 RF_ERR_BAD_REQUEST);
    b[0] = 'z';
    CHECK_INT_EQ(mp_boundary("multipart/form-data; boundary=abcd", b, 0),
                 RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(b[0], 'z');
}

/* Builds a body of n named parts, each "v". */
static char *parts_body(size_t n)
{
    size_t cap = 100 * (n + 1), used = 0, i;
    char *s = malloc(cap);

    if (s == NULL) {
        exit(2);
    }
    for (i = 0; i < n; i++) {
        used += (size_t)snprintf(s + used, cap - used, DELIM "\r\n"
                                 "Content-Disposition: form-data; "
                                 "name=\"f%zu\"\r\n\r\nv\r\n", i);
    }
    snprintf(s + used, cap - used, DELIM "--\r\n");
    return s;
}

static void test_limit_parts(void)
{
    struct mp_limits lim = { 3, 1024 };
    struct mp_part part;
    char *s;

    s = parts_body(3);
    CHECK_INT_EQ(find_in(s, &lim, "f2", &part), RF_OK);
    CHECK_INT_EQ(part.index, 2);
    free(s);

    s = parts_body(4);
    CHECK_INT_EQ(find_in(s, &lim, "f0", &part), RF_ERR_TOO_MANY_PARTS);
    CHECK(part.data == NULL && part.len == 0);
    free(s);

    lim.max_parts = 0;
    CHECK_INT_EQ(find_in(DELIM "--\r\n", &lim, "f0", &part),
                 RF_ERR_NO_IMAGE);
    s = parts_body(1);
    CHECK_INT_EQ(find_in(s, &lim, "f0", &part), RF_ERR_TOO_MANY_PARTS);
    free(s);
}

static void test_limit_header(void)
{
    static const char line[] = "Content-Disposition: form-data; name=a\r\n";
    static const char body[] =
        DELIM "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n"
        DELIM "--";
    /* The limit covers the header lines with their CRLFs. */
    struct mp_limits lim = { 16, sizeof line - 1 };
    struct mp_part part;

    CHECK_INT_EQ(find_in(body, &lim, "a", &part), RF_OK);
    CHECK_INT_EQ(part.len, 1);
    lim.max_header_bytes = sizeof line - 2;
    CHECK_INT_EQ(find_in(body, &lim, "a", &part), RF_ERR_HEADER_TOO_LARGE);
    lim.max_header_bytes = 0;
    CHECK_INT_EQ(find_in(body, &lim, "a", &part), RF_ERR_HEADER_TOO_LARGE);
    /* A part without header lines fits any limit. */
    CHECK_INT_EQ(find_in(DELIM "\r\n\r\nx\r\n" DELIM "--", &lim, "a", &part),
                 RF_ERR_NO_IMAGE);
    lim.max_header_bytes = (size_t)-1;
    CHECK_INT_EQ(find_in(body, &lim, "a", &part), RF_OK);
}

struct collect {
    size_t calls;
    size_t stop_after;
    size_t index[8];
    size_t len[8];
};

static bool collect_part(const struct mp_part *part, void *ctx)
{
    struct collect *c = ctx;

    if (c->calls < 8) {
        c->index[c->calls] = part->index;
        c->len[c->calls] = part->len;
    }
    c->calls++;
    return c->calls != c->stop_after;
}

static void test_parse_order_and_stop(void)
{
    /* Named, unnamed, named; then a part that never ends. */
    static const char text[] =
        DELIM "\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
        DELIM "\r\n\r\n22\r\n"
        DELIM "\r\nContent-Disposition: form-data; name=b\r\n\r\n333\r\n"
        DELIM "\r\nContent-Disposition: form-data; name=c\r\n\r\n4444";
    size_t n = sizeof text - 1;
    unsigned char *body = dup_body(text, n);
    struct collect c = { 0, 0, { 0 }, { 0 } };
    struct mp_part part;
    char err[96];

    CHECK_INT_EQ(mp_parse(body, n, "XbOuNdArY", &default_limits,
                          collect_part, &c, err, sizeof err),
                 RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(c.calls, 2);
    CHECK_INT_EQ(c.index[0], 0);
    CHECK_INT_EQ(c.len[0], 1);
    CHECK_INT_EQ(c.index[1], 2);
    CHECK_INT_EQ(c.len[1], 3);
    CHECK(strstr(err, "offset") != NULL);

    /* Stopping early never looks at the bad tail... */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    CHECK_INT_EQ(mp_parse(body, n, "XbOuNdArY", &default_limits,
                          collect_part, &c, NULL, 0), RF_OK);
    CHECK_INT_EQ(c.calls, 2);

    /* ...but mp_find checks the whole body even after its match. */
    CHECK_INT_EQ(mp_find(body, n, "XbOuNdArY", &default_limits, "a", &part,
                         err, sizeof err), RF_ERR_BAD_REQUEST);
    CHECK(part.data == NULL);
    free(body);
}

static void test_name_eq(void)
{
    struct mp_part p;

    memset(&p, 0, sizeof p);
    CHECK(!mp_part_name_eq(&p, ""));
    CHECK(!mp_part_name_eq(NULL, "a"));
    p.name = "im\\\"age";
    p.name_len = 7;
    CHECK(mp_part_name_eq(&p, "im\"age"));
    CHECK(!mp_part_name_eq(&p, "im\\\"age"));
    CHECK(!mp_part_name_eq(&p, "im\"ag"));
    CHECK(!mp_part_name_eq(&p, "im\"agee"));
    p.name = "imagex";
    p.name_len = 5;
    CHECK(mp_part_name_eq(&p, "image"));
    p.name_len = 0;
    CHECK(mp_part_name_eq(&p, ""));
}

static void test_err_buffer(void)
{
    static const char text[] = "no delimiter here";
    unsigned char *body = dup_body(text, sizeof text - 1);
    struct mp_part part;
    char err[8];

    memset(err, 'x', sizeof err);
    CHECK_INT_EQ(mp_find(body, sizeof text - 1, "XbOuNdArY", &default_limits,
                         "image", &part, err, sizeof err),
                 RF_ERR_BAD_REQUEST);
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    CHECK(strlen(err) == sizeof err - 1);
    CHECK_INT_EQ(mp_find(body, sizeof text - 1, "XbOuNdArY", &default_limits,
                         "image", &part, NULL, 0), RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(mp_find(body, sizeof text - 1, "", &default_limits,
                         "image", &part, NULL, 0), RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(mp_find(NULL, 0, "XbOuNdArY", &default_limits,
                         "image", &part, NULL, 0), RF_ERR_BAD_REQUEST);
    free(body);
}

/*
 * A body made to punish quadratic rescans: 8 MiB of CRs, then one part
 * whose 8 MiB of data are near-delimiters. A quadratic scan would take
 * hours; the time bound is generous for sanitizer builds.
 */
static void test_linear_time(void)
{
    static const char head[] =
        DELIM "\r\nContent-Disposition: form-data; name=image\r\n\r\n";
    static const char near[] = "\r\n--XbOuNdArX";
    static const char tail[] = "\r\n" DELIM "--";
    size_t reps = (8u << 20) / (sizeof near - 1), pre = 8u << 20;
    size_t n = pre + sizeof head - 1 + reps * (sizeof near - 1) +
               sizeof tail - 1;
    unsigned char *body = malloc(n), *p = body;
    struct mp_part part;
    clock_t t0;
    double secs;
    size_t i;

    if (body == NULL) {
        exit(2);
    }
    memset(p, '\r', pre);
    p += pre;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    for (i = 0; i < reps; i++) {
        memcpy(p, near, sizeof near - 1);
        p += sizeof near - 1;
    }
    memcpy(p, tail, sizeof tail - 1);

    t0 = clock();
    /* Without CRLF before it, the first delimiter is the close one. */
    CHECK_INT_EQ(mp_find(body, n, "XbOuNdArY", &default_limits, "image",
                         &part, NULL, 0), RF_ERR_NO_IMAGE);
    body[pre - 1] = '\n';
    CHECK_INT_EQ(mp_find(body, n, "XbOuNdArY", &default_limits, "image",
                         &part, NULL, 0), RF_OK);
    CHECK_INT_EQ(part.len, reps * (sizeof near - 1));
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 10.0) {
        fprintf(stderr, "  %.1f s for %zu bytes: not linear?\n", secs, n);
        CHECK(false);
    }
    free(body);
}

/* Reads a whole file; *len gets its size. NULL if it cannot be read. */
static unsigned char *read_file(const char *dir, const char *file,
                                size_t *len)
{
    char path[4096];
    unsigned char *buf = NULL;
    FILE *f;
    long size;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    /* Exactly size bytes: a read past the end is an ASan report. */
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL ||
        fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t)size;
out:
    fclose(f);
    return buf;
}

/* Returns a NUL-terminated copy of a one-line file without its newline. */
static char *read_line_file(const char *dir, const char *file)
{
    size_t n = 0;
    unsigned char *raw = read_file(dir, file, &n);
    char *s;

    if (raw == NULL) {
        return NULL;
    }
    s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, raw, n);
        s[n] = '\0';
        if (n > 0 && s[n - 1] == '\n') {
            s[n - 1] = '\0';
        }
    }
    free(raw);
    return s;
}

/*
 * Finds key= in a key=value text (lines, '#' comments) and returns a
 * malloc'd copy of its value, or NULL when absent.
 */
static char *kv_get(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *line = text;

    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t n = end != NULL ? (size_t)(end - line) : strlen(line);

        if (line[0] != '#' && n > klen && strncmp(line, key, klen) == 0 &&
            line[klen] == '=') {
            char *v = malloc(n - klen);

            if (v != NULL) {
                memcpy(v, line + klen + 1, n - klen - 1);
                v[n - klen - 1] = '\0';
            }
            return v;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

static size_t kv_size(const char *text, const char *key, size_t dflt)
{
    char *v = text != NULL ? kv_get(text, key) : NULL;
    size_t r = dflt;

    if (v != NULL) {
        r = (size_t)strtoull(v, NULL, 10);
        free(v);
    }
    return r;
}

static bool count_part(const struct mp_part *part, void *ctx)
{
    (void)part;
    (*(size_t *)ctx)++;
    return true;
}

#define CASE_FAIL(...)                                                      \
    do {                                                                    \
        fprintf(stderr, "  FAIL case %s: ", name);                          \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
        failed = true;                                                      \
    } while (0)

/* Runs one case folder; returns true when it passes. */
static bool run_case(const char *root, const char *name)
{
    char dir[4096], boundary[MP_BOUNDARY_SIZE], err[256] = "";
    char *ct = NULL, *expected = NULL, *limits_text = NULL;
    char *want = NULL, *find = NULL, *v = NULL;
    unsigned char *body = NULL, *data = NULL;
    size_t body_len = 0, data_len = 0, named = 0;
    struct mp_limits lim;
    struct mp_part part;
    enum rf_result rc, prc;
    bool failed = false;

    snprintf(dir, sizeof dir, "%s/%s", root, name);
    ct = read_line_file(dir, "content_type");
    body = read_file(dir, "body", &body_len);
    expected = read_line_file(dir, "expected");
    if (ct == NULL || body == NULL || expected == NULL) {
        CASE_FAIL("needs content_type, body and expected");
        goto out;
    }
    limits_text = read_line_file(dir, "limits");
    lim.max_parts = kv_size(limits_text, "max_parts",
                            default_limits.max_parts);
    lim.max_header_bytes = kv_size(limits_text, "max_header_bytes",
                                   default_limits.max_header_bytes);
    want = kv_get(expected, "result");
    find = kv_get(expected, "find");
    if (want == NULL) {
        CASE_FAIL("expected has no result= line");
        goto out;
    }

    rc = mp_boundary(ct, boundary, sizeof boundary);
    if (rc == RF_OK) {
        rc = mp_find(body, body_len, boundary, &lim,
                     find != NULL ? find : "image", &part, err, sizeof err);
        /* mp_parse judges the body the same way, found or not. */
        prc = mp_parse(body, body_len, boundary, &lim, count_part, &named,
                       NULL, 0);
        if (prc != (rc == RF_ERR_NO_IMAGE ? RF_OK : rc)) {
            CASE_FAIL("mp_parse gave %s", rf_result_name(prc));
        }
        if (rc != RF_OK && err[0] == '\0') {
            CASE_FAIL("no error detail for %s", rf_result_name(rc));
        }
    }
    /* MP_TEST_VERBOSE=1 shows why each refused case was refused. */
    if (getenv("MP_TEST_VERBOSE") != NULL && err[0] != '\0') {
        fprintf(stderr, "  case %s: %s\n", name, err);
    }
    if (strcmp(rf_result_name(rc), want) != 0) {
        CASE_FAIL("result %s, expected %s (%s)", rf_result_name(rc), want,
                  err);
        goto out;
    }
    if (rc == RF_OK || rc == RF_ERR_NO_IMAGE) {
        if (kv_size(expected, "parts", named) != named) {
            CASE_FAIL("%zu named parts delivered", named);
        }
    }
    if (rc != RF_OK) {
        goto out;
    }

    if (part.data < body || part.data + part.len > body + body_len) {
        CASE_FAIL("part data outside the body");
        goto out;
    }
    if (kv_size(expected, "len", part.len) != part.len) {
        CASE_FAIL("len %zu", part.len);
    }
    if (kv_size(expected, "index", part.index) != part.index) {
        CASE_FAIL("index %zu", part.index);
    }
    data = read_file(dir, "data", &data_len);
    if (data != NULL && (data_len != part.len ||
                         memcmp(data, part.data, data_len) != 0)) {
        CASE_FAIL("data differs from the data file (%zu vs %zu bytes)",
                  part.len, data_len);
    }
    v = kv_get(expected, "filename");
    if (v != NULL) {
        bool none = strcmp(v, "(none)") == 0;

        if (none ? part.filename != NULL
                 : part.filename == NULL || part.filename_len != strlen(v) ||
                   memcmp(part.filename, v, part.filename_len) != 0) {
            CASE_FAIL("filename differs from \"%s\"", v);
        }
    }

out:
    free(v);
    free(data);
    free(find);
    free(want);
    free(limits_text);
    free(expected);
    free(body);
    free(ct);
    return !failed;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every subfolder of root, in name order, as one check each. */
static void run_cases(const char *root)
{
    char **names = NULL, **grown;
    size_t count = 0, cap = 0, i;
    struct dirent *de;
    DIR *d = opendir(root);

    if (d == NULL) {
        fprintf(stderr, "not ok cases: cannot open %s\n", root);
        check_state.failed++;
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof path, "%s/%s", root, de->d_name);
        if (de->d_name[0] == '.' || stat(path, &st) != 0 ||
            !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) {
                exit(2);
            }
            names = grown;
        }
        names[count] = strdup(de->d_name);
        if (names[count] == NULL) {
            exit(2);
        }
        count++;
    }
    closedir(d);
    if (count > 0) {
        qsort(names, count, sizeof *names, compare_names);
    }

    for (i = 0; i < count; i++) {
        if (run_case(root, names[i])) {
            check_state.passed++;
            fprintf(stderr, "ok case %s\n", names[i]);
        } else {
            check_state.failed++;
            fprintf(stderr, "not ok case %s\n", names[i]);
        }
        free(names[i]);
    }
    free(names);

    /* An empty or mistyped folder must not pass silently. */
    if (count == 0) {
        fprintf(stderr, "not ok cases: no case folders in %s\n", root);
        check_state.failed++;
    }
}

int main(int argc, char **argv)
{
    RUN(test_boundary_accepts);
    RUN(test_boundary_rejects);
    RUN(test_boundary_out_size);
    RUN(test_limit_parts);
    RUN(test_limit_header);
    RUN(test_parse_order_and_stop);
    RUN(test_name_eq);
    RUN(test_err_buffer);
    RUN(test_linear_time);

    if (argc < 2) {
        fprintf(stderr, "not ok cases: usage: %s CASES_DIR\n", argv[0]);
        check_state.failed++;
    } else {
        run_cases(argv[1]);
    }
    return check_summary("multipart");
}
