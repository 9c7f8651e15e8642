/*
 * Tests of fcgi/handler: handler_serve() driven with hand-built requests
 * and a real predictor on the default model (read by
 * predictor_source_read() with config_defaults(), as the master does).
 * What the replies must name and how many emotions they carry come from
 * that model's card, never from constants here.
 * Covers /health, /predict and /images on a real face, and every error
 * path, whose body must be exactly {"error":"<message of fcgi/status.c>"}.
 */
#define _POSIX_C_SOURCE 200809L

#include "fcgi/handler.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reply.h"
#include "tests/unit/check.h"

#define BOUNDARY "----RefaceUnitBoundary7d1f"
#define CT_MULTIPART "multipart/form-data; boundary=" BOUNDARY

static const char *dir = "tests/unit/handler";
static struct config cfg;
static struct handler handler;
static unsigned char *face;
static size_t face_len;

struct buf {
    unsigned char *data;
    size_t len;
};

static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *b;
    long n;
    FILE *f = fopen(path, "rb");

    *len = 0;
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc(n > 0 ? (size_t)n : 1);
    if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A multipart body of one part named `field` holding `len` bytes, in a
 * heap buffer of exactly its size (ASan sees any over-read). */
static struct buf multipart(const char *field, const char *filename,
                            const void *data, size_t len)
{
    char head[512];
    static const char tail[] = "\r\n--" BOUNDARY "--\r\n";
    int n = snprintf(head, sizeof(head),
                     "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                     "filename=\"%s\"\r\nContent-Type: image/jpeg\r\n\r\n",
                     BOUNDARY, field, filename);
    struct buf b;

    b.len = (size_t)n + len + sizeof(tail) - 1;
    b.data = malloc(b.len);
    if (b.data == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(b.data, head, (size_t)n);
    memcpy(b.data + n, data, len);
    memcpy(b.data + n + len, tail, sizeof(tail) - 1);
    return b;
}

static int serve(const char *method, const char *path, const char *ct,
                 const struct buf *body, int too_large, struct response *rs)
{
    struct request rq = {
        .method = method,
        .path = path,
        .content_type = ct,
        .body = body != NULL ? body->data : NULL,
        .body_len = body != NULL ? body->len : 0,
        .body_too_large = too_large,
    };

    return handler_serve(&handler, &rq, rs);
}

/* The value of header `name` in rs (copied into out), or NULL. */
static const char *header(const struct response *rs, const char *name,
                          char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = rs->headers, *end = rs->headers + rs->headers_len;

    while (p < end) {
        const char *eol = strstr(p, "\r\n");

        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > nlen + 2 && strncmp(p, name, nlen) == 0 &&
            p[nlen] == ':' && p[nlen + 1] == ' ') {
            snprintf(out, outsz, "%.*s", (int)(eol - p - (long)nlen - 2),
                     p + nlen + 2);
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

static json_t *body_json(const struct response *rs)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)rs->body, rs->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        fprintf(stderr, "  body is not JSON: %s: %.*s\n", jerr.text,
                (int)(rs->body_len < 200 ? rs->body_len : 200),
                (const char *)rs->body);
    }
    return root;
}

/* The status, JSON type, and a body of exactly {"error":"message"}. */
static void expect_error(const struct response *rs, int rc, int status,
                         const char *message)
{
    char want[256];

    snprintf(want, sizeof(want), "{\"error\":\"%s\"}", message);
    CHECK_INT_EQ(rc, status);
    CHECK_INT_EQ(rs->status, status);
    CHECK_STR_EQ(rs->content_type, "application/json");
    CHECK_INT_EQ(rs->body_len, strlen(want));
    CHECK(rs->body != NULL && rs->body_len == strlen(want) &&
          memcmp(rs->body, want, rs->body_len) == 0);
    if (rs->body != NULL && (rs->body_len != strlen(want) ||
                             memcmp(rs->body, want, rs->body_len) != 0)) {
        fprintf(stderr, "  body %.*s, want %s\n", (int)rs->body_len,
                (const char *)rs->body, want);
    }
}

static void test_health(void)
{
    struct response rs;
    json_t *root;
    int rc = serve("GET", "/health", NULL, NULL, 0, &rs);

    CHECK_INT_EQ(rc, 200);
    CHECK_STR_EQ(rs.content_type, "application/json");
    root = body_json(&rs);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_STR_EQ(json_string_value(json_object_get(root, "status")),
                     "ok");
        const struct card *card = predictor_card(handler.predictor);

        CHECK_STR_EQ(json_string_value(json_object_get(root, "model")),
                     card->name);
        CHECK_INT_EQ(json_array_size(json_object_get(root,
                                                     "emotion_labels")),
                     card->n_labels);
    }
    json_decref(root);
    response_release(&rs);
    response_release(&rs);

    rc = serve("HEAD", "/health", NULL, NULL, 0, &rs);
    CHECK_INT_EQ(rc, 200);
    response_release(&rs);
}

/* /predict on the face: every field present, typed and consistent. */
static json_t *predict_face(void)
{
    struct buf body = multipart("image", "face.jpg", face, face_len);
    struct response rs;
    json_t *root, *emo;
    const char *first = NULL, *key;
    json_t *value;
    double sum = 0.0;
    int rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);

    CHECK_INT_EQ(rc, 200);
    CHECK_STR_EQ(rs.content_type, "application/json");
    CHECK_INT_EQ(rs.result, RF_OK);
    root = body_json(&rs);
    CHECK(json_is_object(root));
    if (root != NULL) {
        double age = json_number_value(json_object_get(root, "age"));
        json_int_t gender =
            json_integer_value(json_object_get(root, "gender"));
        const char *gname =
            json_string_value(json_object_get(root, "gender_name"));
        double pm = json_number_value(json_object_get(root,
                                                      "gender_probability"));

        fprintf(stderr, "  /predict: %.*s\n", (int)rs.body_len,
                (const char *)rs.body);
        CHECK_INT_EQ(json_object_size(root), 7);
        CHECK(json_is_number(json_object_get(root, "age")));
        CHECK(age >= 0.0 && age <= 100.0);
        CHECK_NEAR(age * 10.0, round(age * 10.0), 1e-6);
        CHECK(json_is_integer(json_object_get(root, "gender")));
        CHECK(gender == 0 || gender == 1);
        CHECK_STR_EQ(gname, gender ? "male" : "female");
        CHECK(pm >= 0.0 && pm <= 1.0);
        CHECK_INT_EQ(gender, pm >= 0.5);

        emo = json_object_get(root, "emotions");
        CHECK_INT_EQ(json_object_size(emo),
                     predictor_card(handler.predictor)->n_labels);
        json_object_foreach(emo, key, value) {
            if (first == NULL) {
                first = key;
                CHECK_NEAR(json_number_value(value),
                           json_number_value(json_object_get(
                               root, "emotion_confidence")), 0.0);
            }
            sum += json_number_value(value);
        }
        CHECK_NEAR(sum, 1.0, 1e-3);
        CHECK_STR_EQ(json_string_value(json_object_get(root, "emotion")),
                     first);
        /* The timing reached the access log. */
        CHECK(rs.timing.infer_us > 0);
    }
    response_release(&rs);
    free(body.data);
    return root;
}

static void test_predict(void)
{
    json_decref(predict_face());
}

static double header_double(const struct response *rs, const char *name)
{
    char v[512];

    if (header(rs, name, v, sizeof(v)) == NULL) {
        fprintf(stderr, "  header %s missing\n", name);
        CHECK(!"header present");
        return -1.0;
    }
    return strtod(v, NULL);
}

static void test_images(void)
{
    struct buf body = multipart("image", "face.jpg", face, face_len);
    struct response rs;
    json_t *ref = predict_face(), *emo, *hdr_emo;
    char v[512];
    int rc = serve("POST", "/images", CT_MULTIPART, &body, 0, &rs);

    CHECK_INT_EQ(rc, 200);
    CHECK_STR_EQ(rs.content_type, "image/jpeg");
    CHECK_INT_EQ(rs.body_len, face_len);
    CHECK(rs.body != NULL && rs.body_len == face_len &&
          memcmp(rs.body, face, face_len) == 0);
    fprintf(stderr, "  /images headers:\n%.*s", (int)rs.headers_len,
            rs.headers);
    CHECK(ref != NULL);
    if (ref == NULL) {
        response_release(&rs);
        free(body.data);
        return;
    }

    /* The same values the JSON shows, rounded the same way. */
    CHECK(header(&rs, "X-Prediction-Age", v, sizeof(v)) != NULL);
    CHECK_NEAR(header_double(&rs, "X-Prediction-Age"),
               json_number_value(json_object_get(ref, "age")), 1e-9);
    CHECK_STR_EQ(header(&rs, "X-Prediction-Gender", v, sizeof(v)),
                 json_string_value(json_object_get(ref, "gender_name")));
    CHECK_NEAR(header_double(&rs, "X-Prediction-Gender-Code"),
               (double)json_integer_value(json_object_get(ref, "gender")),
               0.0);
    CHECK_NEAR(header_double(&rs, "X-Prediction-Gender-Probability"),
               json_number_value(json_object_get(ref,
                                                 "gender_probability")),
               1e-6);
    CHECK_STR_EQ(header(&rs, "X-Prediction-Emotion", v, sizeof(v)),
                 json_string_value(json_object_get(ref, "emotion")));
    CHECK_NEAR(header_double(&rs, "X-Prediction-Emotion-Confidence"),
               json_number_value(json_object_get(ref, "emotion_confidence")),
               1e-6);

    CHECK(header(&rs, "X-Prediction-Emotions", v, sizeof(v)) != NULL);
    CHECK(strchr(v, ' ') == NULL);     /* compact */
    hdr_emo = json_loads(v, 0, NULL);
    emo = json_object_get(ref, "emotions");
    CHECK(hdr_emo != NULL);
    /* Same keys, values, and order (json_equal ignores order). */
    CHECK(json_equal(hdr_emo, emo));
    if (hdr_emo != NULL) {
        void *a = json_object_iter(hdr_emo), *b = json_object_iter(emo);

        while (a != NULL && b != NULL) {
            CHECK_STR_EQ(json_object_iter_key(a), json_object_iter_key(b));
            a = json_object_iter_next(hdr_emo, a);
            b = json_object_iter_next(emo, b);
        }
        CHECK(a == NULL && b == NULL);
    }
    json_decref(hdr_emo);
    json_decref(ref);
    response_release(&rs);
    free(body.data);
}

static void test_wrong_method(void)
{
    struct response rs;
    char v[64];
    int rc;

    rc = serve("GET", "/predict", NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 405, "Method not allowed");
    CHECK_STR_EQ(header(&rs, "Allow", v, sizeof(v)), "POST");
    response_release(&rs);

    rc = serve("PUT", "/images", NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 405, "Method not allowed");
    CHECK_STR_EQ(header(&rs, "Allow", v, sizeof(v)), "POST");
    response_release(&rs);

    rc = serve("POST", "/health", NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 405, "Method not allowed");
    CHECK_STR_EQ(header(&rs, "Allow", v, sizeof(v)), "GET, HEAD");
    response_release(&rs);

    rc = serve(NULL, "/predict", NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 405, "Method not allowed");
    response_release(&rs);

    /* Methods are case-sensitive (RFC 9110). */
    rc = serve("post", "/predict", NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 405, "Method not allowed");
    response_release(&rs);
}

static void test_unknown_path(void)
{
    static const char *const paths[] = { "/", "/nope", "/predict/",
                                         "/Predict", "/health/x", "" };
    struct response rs;
    int rc;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        rc = serve("GET", paths[i], NULL, NULL, 0, &rs);
        expect_error(&rs, rc, 404, "Not found");
        response_release(&rs);
    }
    rc = serve("GET", NULL, NULL, NULL, 0, &rs);
    expect_error(&rs, rc, 404, "Not found");
    response_release(&rs);
}

static void test_bad_content_type(void)
{
    static const char *const types[] = {
        NULL, "application/json", "multipart/form-data",
        "multipart/form-data; boundary=", "text/plain; boundary=" BOUNDARY,
    };
    struct buf body = multipart("image", "face.jpg", face, face_len);
    struct response rs;
    int rc;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        rc = serve("POST", "/predict", types[i], &body, 0, &rs);
        expect_error(&rs, rc, 400, "Missing 'image' field in request");
        response_release(&rs);
    }
    /* Right header, empty body. */
    rc = serve("POST", "/predict", CT_MULTIPART, NULL, 0, &rs);
    CHECK_INT_EQ(rc, 400);
    CHECK_STR_EQ(rs.content_type, "application/json");
    response_release(&rs);
    free(body.data);
}

static void test_no_image_field(void)
{
    struct buf body = multipart("photo", "face.jpg", face, face_len);
    struct response rs;
    int rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);

    expect_error(&rs, rc, 400, "Missing 'image' field in request");
    CHECK_INT_EQ(rs.result, RF_ERR_NO_IMAGE);
    response_release(&rs);
    rc = serve("POST", "/images", CT_MULTIPART, &body, 0, &rs);
    expect_error(&rs, rc, 400, "Missing 'image' field in request");
    response_release(&rs);
    free(body.data);
}

static void test_text_as_image(void)
{
    static const char text[] = "just some words, not a picture at all\n";
    struct buf body = multipart("image", "face.jpg", text, sizeof(text) - 1);
    struct response rs;
    int rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);

    expect_error(&rs, rc, 415, "Unsupported image format");
    CHECK_INT_EQ(rs.result, RF_ERR_UNSUPPORTED);
    response_release(&rs);
    /* /images answers errors in JSON too, never with the upload. */
    rc = serve("POST", "/images", CT_MULTIPART, &body, 0, &rs);
    expect_error(&rs, rc, 415, "Unsupported image format");
    CHECK_INT_EQ(rs.headers_len, 0);
    response_release(&rs);
    free(body.data);
}

static void test_body_too_large(void)
{
    struct buf body = multipart("image", "face.jpg", face, face_len);
    struct config small = cfg;
    struct handler h = handler;
    struct request rq = {
        "POST", "/predict", CT_MULTIPART, body.data, body.len, 0, NULL
    };
    struct response rs;
    int rc;

    /* The front end refused to read it: the flag alone decides. */
    rc = serve("POST", "/predict", CT_MULTIPART, NULL, 1, &rs);
    expect_error(&rs, rc, 413, "Request body too large");
    response_release(&rs);

    /* A body over max_body that was read anyway. */
    small.max_body = body.len - 1;
    h.cfg = &small;
    rc = handler_serve(&h, &rq, &rs);
    expect_error(&rs, rc, 413, "Request body too large");
    response_release(&rs);
    small.max_body = body.len;
    rc = handler_serve(&h, &rq, &rs);
    CHECK_INT_EQ(rc, 200);
    response_release(&rs);
    free(body.data);
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
    }
    return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG signature, IHDR for w x h RGB (right CRC) and IEND: no pixels. */
static size_t png_header(unsigned char *out, uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
                                          0x1a, '\n' };
    unsigned char *c = out + 8;

    memcpy(out, sig, 8);
    put32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    put32(c + 8, w);
    put32(c + 12, h);
    c[16] = 8;
    c[17] = 2;
    c[18] = c[19] = c[20] = 0;
    put32(c + 21, crc32_png(c + 4, 17));
    c += 25;
    put32(c, 0);
    memcpy(c + 4, "IEND", 4);
    put32(c + 8, crc32_png(c + 4, 4));
    return 45;
}

static void check_huge(uint32_t w, uint32_t h)
{
    unsigned char png[64];
    size_t n = png_header(png, w, h);
    struct buf body = multipart("image", "huge.png", png, n);
    struct response rs;
    int rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);

    fprintf(stderr, "  %ux%u PNG: %d %.*s (%s)\n", w, h, rc,
            (int)rs.body_len, (const char *)rs.body, rs.detail);
    expect_error(&rs, rc, 413, "Image dimensions too large");
    response_release(&rs);
    free(body.data);
}

static void test_huge_png_10000(void)
{
    check_huge(10000, 10000);
}

/* Fails while core/image.c lets stb's own header limits answer first. */
static void test_huge_png_100000(void)
{
    check_huge(100000, 100000);
}

static void test_truncated_jpeg(void)
{
    struct buf body = multipart("image", "face.jpg", face, 200);
    struct response rs;
    int rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);

    fprintf(stderr, "  200-byte JPEG: %d (%s)\n", rc, rs.detail);
    expect_error(&rs, rc, 400, "Image could not be decoded");
    CHECK_INT_EQ(rs.result, RF_ERR_DECODE);
    response_release(&rs);
    free(body.data);
}

int main(int argc, char **argv)
{
    struct predictor_source src;
    struct predictor_status st;
    char err[512] = "", path[600];
    int rc;

    if (argc > 1) {
        dir = argv[1];
    }
    snprintf(path, sizeof(path), "%s/face.jpg", dir);
    face = slurp(path, &face_len);
    config_defaults(&cfg);
    if (face == NULL ||
        predictor_source_read(&cfg, &src, err, sizeof(err)) != RF_OK) {
        fprintf(stderr, "setup failed: %s (run from the repository root, "
                "after make model)\n", err);
        free(face);
        printf("RESULT handler 0 1\n");
        return 1;
    }
    handler.cfg = &cfg;
    handler.predictor = predictor_new(&cfg, &src, &st, err, sizeof(err));
    predictor_source_release(&src);
    if (handler.predictor == NULL) {
        fprintf(stderr, "predictor_new failed: %s\n", err);
        free(face);
        printf("RESULT handler 0 1\n");
        return 1;
    }

    RUN(test_health);
    RUN(test_predict);
    RUN(test_images);
    RUN(test_wrong_method);
    RUN(test_unknown_path);
    RUN(test_bad_content_type);
    RUN(test_no_image_field);
    RUN(test_text_as_image);
    RUN(test_body_too_large);
    RUN(test_huge_png_10000);
    RUN(test_huge_png_100000);
    RUN(test_truncated_jpeg);

    predictor_free(handler.predictor);
    free(face);
    rc = check_summary("handler");
    return rc;
}
