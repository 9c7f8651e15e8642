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

#include "core/image.h"
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

static int serve_q(const char *method, const char *path, const char *query,
                   const char *ct, const struct buf *body, int too_large,
                   struct response *rs)
{
    struct request rq = {
        .method = method,
        .path = path,
        .content_type = ct,
        .body = body != NULL ? body->data : NULL,
        .body_len = body != NULL ? body->len : 0,
        .body_too_large = too_large,
        .query = query,
    };

    return handler_serve(&handler, &rq, rs);
}

static int serve(const char *method, const char *path, const char *ct,
                 const struct buf *body, int too_large, struct response *rs)
{
    return serve_q(method, path, NULL, ct, body, too_large, rs);
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
        /* face_detected, image, the seven fields, faces. */
        CHECK_INT_EQ(json_object_size(root), 10);
        CHECK(json_is_boolean(json_object_get(root, "face_detected")));
        CHECK_INT_EQ(json_integer_value(json_object_get(
            json_object_get(root, "image"), "width")), 200);
        CHECK_INT_EQ(json_integer_value(json_object_get(
            json_object_get(root, "image"), "height")), 200);
        CHECK(json_array_size(json_object_get(root, "faces")) >= 1);
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

/* The mosaic of five dev faces and a blank sixth cell (images/README). */
static unsigned char *mosaic;
static size_t mosaic_len;

/*
 * A zeroed 24-bit BMP of w x h with its headers written; `row` gets the
 * padded row length. Rows are stored bottom-up, in BGR.
 */
static struct buf bmp_new(int w, int h, size_t *row)
{
    size_t size;
    unsigned char *b;

    *row = ((size_t)w * 3 + 3) & ~(size_t)3;
    size = 54 + *row * (size_t)h;
    b = calloc(1, size);
    if (b == NULL) {
        exit(2);
    }
    b[0] = 'B';
    b[1] = 'M';
    for (int i = 0; i < 4; i++) {
        b[2 + i] = (unsigned char)(size >> (8 * i));
        b[18 + i] = (unsigned char)((unsigned)w >> (8 * i));
        b[22 + i] = (unsigned char)((unsigned)h >> (8 * i));
    }
    b[10] = 54;
    b[14] = 40;
    b[26] = 1;
    b[28] = 24;
    return (struct buf){ b, size };
}

/* A 320x240 24-bit BMP of a smooth gradient: nothing like a face. */
static struct buf gradient_bmp(void)
{
    enum { W = 320, H = 240 };
    size_t row;
    struct buf out = bmp_new(W, H, &row);

    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            unsigned char *px = out.data + 54 + (size_t)y * row +
                                (size_t)x * 3;

            px[0] = (unsigned char)(60 + x / 4);
            px[1] = (unsigned char)(90 + y / 3);
            px[2] = 150;
        }
    }
    return out;
}

/* A 24-bit BMP of the rectangle (x, y, w, h) of `im`. */
static struct buf bmp_of(const struct img *im, int x0, int y0, int w, int h)
{
    size_t row;
    struct buf out = bmp_new(w, h, &row);

    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const unsigned char *src = im->rgb +
                ((size_t)(y0 + y) * (size_t)im->width + (size_t)(x0 + x)) * 3;
            unsigned char *px = out.data + 54 + (size_t)(h - 1 - y) * row +
                                (size_t)x * 3;

            px[0] = src[2];
            px[1] = src[1];
            px[2] = src[0];
        }
    }
    return out;
}

/* /predict with `query` on `data`; the parsed body, or NULL. */
static json_t *predict_json(const void *data, size_t len, const char *query,
                            int want_status)
{
    struct buf body = multipart("image", "x.jpg", data, len);
    struct response rs;
    json_t *root;
    int rc = serve_q("POST", "/predict", query, CT_MULTIPART, &body, 0, &rs);

    CHECK_INT_EQ(rc, want_status);
    root = body_json(&rs);
    response_release(&rs);
    free(body.data);
    return root;
}

static json_int_t box_value(json_t *face, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(face, "box"),
                                              key));
}

static void test_mosaic_faces(void)
{
    json_t *root = predict_json(mosaic, mosaic_len, NULL, 200);
    json_t *faces = json_object_get(root, "faces");
    json_int_t prev = -1;
    size_t i;
    json_t *f;

    CHECK(json_is_true(json_object_get(root, "face_detected")));
    CHECK_INT_EQ(json_array_size(faces), 5);
    json_array_foreach(faces, i, f) {
        json_int_t x = box_value(f, "x"), y = box_value(f, "y");
        json_int_t w = box_value(f, "width"), h = box_value(f, "height");
        double score = json_number_value(json_object_get(f, "score"));

        fprintf(stderr, "  face %zu: %lld,%lld %lldx%lld score %.3f\n", i,
                (long long)x, (long long)y, (long long)w, (long long)h,
                score);
        /* Inside the image, one per 200 px cell, none in the blank one. */
        CHECK(x >= 0 && y >= 0 && x + w <= 600 && y + h <= 400);
        CHECK(w >= 60 && h >= 60);
        CHECK((x + w / 2) / 200 + 3 * ((y + h / 2) / 200) != 5);
        CHECK(score > 0.5 && score <= 1.0);
        /* Largest first. */
        CHECK(prev < 0 || w * h <= prev);
        prev = w * h;
        CHECK_STR_EQ(json_string_value(json_object_get(f, "gender_name")),
                     json_integer_value(json_object_get(f, "gender"))
                         ? "male" : "female");
    }
    /* The top-level fields are those of faces[0]. */
    f = json_array_get(faces, 0);
    CHECK_NEAR(json_number_value(json_object_get(root, "age")),
               json_number_value(json_object_get(f, "age")), 0.0);
    CHECK(json_equal(json_object_get(root, "emotions"),
                     json_object_get(f, "emotions")));
    json_decref(root);

    /* max_faces keeps the largest ones. */
    root = predict_json(mosaic, mosaic_len, "max_faces=2", 200);
    CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 2);
    json_decref(root);

    /* min_face over every box: none left, and said so. */
    root = predict_json(mosaic, mosaic_len, "min_face=300", 200);
    CHECK(json_is_false(json_object_get(root, "face_detected")));
    CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 0);
    CHECK(json_object_get(root, "age") == NULL);
    json_decref(root);
}

static void test_no_face(void)
{
    struct buf bmp = gradient_bmp();
    json_t *root = predict_json(bmp.data, bmp.len, NULL, 200);

    CHECK(root != NULL);
    if (root != NULL) {
        CHECK(json_is_false(json_object_get(root, "face_detected")));
        CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 0);
        CHECK_INT_EQ(json_object_size(root), 3);   /* no prediction */
        CHECK_INT_EQ(json_integer_value(json_object_get(
            json_object_get(root, "image"), "width")), 320);
    }
    json_decref(root);
    free(bmp.data);
}

/* detect=false: the whole image is the one face, as the original did. */
static void test_detect_false(void)
{
    json_t *root = predict_json(mosaic, mosaic_len, "detect=false", 200);
    json_t *f = json_array_get(json_object_get(root, "faces"), 0);

    CHECK(json_is_false(json_object_get(root, "face_detected")));
    CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 1);
    CHECK_INT_EQ(box_value(f, "x"), 0);
    CHECK_INT_EQ(box_value(f, "y"), 0);
    CHECK_INT_EQ(box_value(f, "width"), 600);
    CHECK_INT_EQ(box_value(f, "height"), 400);
    CHECK(json_is_null(json_object_get(f, "score")));
    CHECK(json_is_number(json_object_get(root, "age")));
    json_decref(root);
}

static void test_bad_query(void)
{
    static const struct {
        const char *query, *name;
    } cases[] = {
        { "max_faces=0", "max_faces" }, { "max_faces=51", "max_faces" },
        { "max_faces=", "max_faces" }, { "max_faces=2x", "max_faces" },
        { "max_faces=-1", "max_faces" }, { "min_face=-1", "min_face" },
        { "min_face=1e3", "min_face" }, { "detect=maybe", "detect" },
        { "detect", "detect" }, { "draw=yes", "draw" },
        { "a=1&max_faces=99999999999", "max_faces" },
    };
    struct buf body = multipart("image", "face.jpg", face, face_len);
    struct response rs;
    char want[96];
    int rc;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(want, sizeof(want), "Invalid query parameter: %s",
                 cases[i].name);
        rc = serve_q("POST", "/predict", cases[i].query, CT_MULTIPART, &body,
                     0, &rs);
        expect_error(&rs, rc, 400, want);
        CHECK_INT_EQ(rs.result, RF_ERR_BAD_QUERY);
        response_release(&rs);
        rc = serve_q("POST", "/images", cases[i].query, CT_MULTIPART, &body,
                     0, &rs);
        expect_error(&rs, rc, 400, want);
        response_release(&rs);
    }
    /* Good values, unknown parameters ignored, the last one wins. */
    rc = serve_q("POST", "/predict", "utm=x&max_faces=50&min_face=0&"
                 "detect=1&detect=true&draw=0", CT_MULTIPART, &body, 0, &rs);
    CHECK_INT_EQ(rc, 200);
    response_release(&rs);
    free(body.data);
}

static void test_images_faces(void)
{
    struct buf body = multipart("image", "m.jpg", mosaic, mosaic_len);
    json_t *ref = predict_json(mosaic, mosaic_len, NULL, 200);
    json_t *f0 = json_array_get(json_object_get(ref, "faces"), 0);
    struct response rs;
    char v[512], want[96];
    int rc = serve("POST", "/images", CT_MULTIPART, &body, 0, &rs);

    CHECK_INT_EQ(rc, 200);
    CHECK_STR_EQ(rs.content_type, "image/jpeg");
    CHECK(rs.body_len == mosaic_len &&
          memcmp(rs.body, mosaic, mosaic_len) == 0);
    CHECK_STR_EQ(header(&rs, "X-Prediction-Faces", v, sizeof(v)), "5");
    snprintf(want, sizeof(want), "%lld,%lld,%lld,%lld",
             (long long)box_value(f0, "x"), (long long)box_value(f0, "y"),
             (long long)box_value(f0, "width"),
             (long long)box_value(f0, "height"));
    CHECK_STR_EQ(header(&rs, "X-Prediction-Box", v, sizeof(v)), want);
    CHECK_NEAR(header_double(&rs, "X-Prediction-Age"),
               json_number_value(json_object_get(f0, "age")), 1e-9);
    response_release(&rs);
    free(body.data);
    json_decref(ref);

    /* No face: a count of 0 and no prediction headers. */
    {
        struct buf bmp = gradient_bmp();

        body = multipart("image", "g.bmp", bmp.data, bmp.len);
        rc = serve("POST", "/images", CT_MULTIPART, &body, 0, &rs);
        CHECK_INT_EQ(rc, 200);
        CHECK_STR_EQ(header(&rs, "X-Prediction-Faces", v, sizeof(v)), "0");
        CHECK(header(&rs, "X-Prediction-Box", v, sizeof(v)) == NULL);
        CHECK(header(&rs, "X-Prediction-Age", v, sizeof(v)) == NULL);
        CHECK_INT_EQ(rs.body_len, bmp.len);
        response_release(&rs);
        free(body.data);
        free(bmp.data);
    }
}

/* draw=true: a PNG of the same size, the boxes drawn in. */
static void test_images_draw(void)
{
    struct buf body = multipart("image", "m.jpg", mosaic, mosaic_len);
    struct img plain = { 0 }, drawn = { 0 };
    struct response rs;
    char err[256], v[64];
    long changed = 0;
    int rc = serve_q("POST", "/images", "draw=true", CT_MULTIPART, &body, 0,
                     &rs);

    CHECK_INT_EQ(rc, 200);
    CHECK_STR_EQ(rs.content_type, "image/png");
    CHECK_STR_EQ(header(&rs, "X-Prediction-Faces", v, sizeof(v)), "5");
    CHECK(rs.body_len > 8 && memcmp(rs.body, "\x89PNG", 4) == 0);
    CHECK_INT_EQ(img_decode(rs.body, rs.body_len, 1 << 24, &drawn, err,
                            sizeof(err)), RF_OK);
    CHECK_INT_EQ(img_decode(mosaic, mosaic_len, 1 << 24, &plain, err,
                            sizeof(err)), RF_OK);
    CHECK_INT_EQ(drawn.width, 600);
    CHECK_INT_EQ(drawn.height, 400);
    if (drawn.rgb != NULL && plain.rgb != NULL && drawn.width == 600 &&
        drawn.height == 400) {
        for (size_t i = 0; i < (size_t)600 * 400 * 3; i++) {
            changed += drawn.rgb[i] != plain.rgb[i];
        }
    }
    /* Boxes and labels, but most of the picture untouched. */
    fprintf(stderr, "  draw changed %ld of %d bytes\n", changed,
            600 * 400 * 3);
    CHECK(changed > 3000 && changed < 600 * 400 * 3 / 3);
    img_release(&plain);
    img_release(&drawn);
    response_release(&rs);
    free(body.data);
}

/*
 * A face that fills its frame (a tight crop of images/ffhq_00064.jpg): the
 * first look finds nothing, the second (detect_retry) finds it. Checked
 * both ways, with a second predictor that has the retry off.
 */
static void test_tight_crop_retry(void)
{
    struct predictor_source src;
    struct predictor_status st;
    struct config one_look = cfg;
    struct handler h = handler;
    struct img im = { 0 };
    struct buf bmp, body;
    struct request rq;
    struct response rs;
    unsigned char *jpg;
    size_t len;
    char err[512];
    json_t *root, *f0;

    jpg = check_read_file("images/ffhq_00064.jpg", &len);
    CHECK(jpg != NULL && img_decode(jpg, len, 1 << 24, &im, err,
                                    sizeof(err)) == RF_OK);
    free(jpg);
    if (im.rgb == NULL) {
        return;
    }
    bmp = bmp_of(&im, 80, 80, 96, 110);
    img_release(&im);

    root = predict_json(bmp.data, bmp.len, NULL, 200);
    f0 = json_array_get(json_object_get(root, "faces"), 0);
    CHECK(json_is_true(json_object_get(root, "face_detected")));
    CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 1);
    CHECK(box_value(f0, "x") >= 0 && box_value(f0, "y") >= 0 &&
          box_value(f0, "x") + box_value(f0, "width") <= 96 &&
          box_value(f0, "y") + box_value(f0, "height") <= 110 &&
          box_value(f0, "width") >= 48 && box_value(f0, "height") >= 48);
    json_decref(root);

    one_look.detect_retry = 0;
    CHECK(predictor_source_read(&one_look, &src, err, sizeof(err)) == RF_OK);
    h.cfg = &one_look;
    h.predictor = predictor_new(&one_look, &src, &st, err, sizeof(err));
    predictor_source_release(&src);
    CHECK(h.predictor != NULL);
    if (h.predictor != NULL) {
        body = multipart("image", "t.bmp", bmp.data, bmp.len);
        memset(&rq, 0, sizeof(rq));
        rq.method = "POST";
        rq.path = "/predict";
        rq.content_type = CT_MULTIPART;
        rq.body = body.data;
        rq.body_len = body.len;
        CHECK_INT_EQ(handler_serve(&h, &rq, &rs), 200);
        root = body_json(&rs);
        CHECK(json_is_false(json_object_get(root, "face_detected")));
        CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 0);
        json_decref(root);
        response_release(&rs);
        free(body.data);
        predictor_free(h.predictor);
    }
    free(bmp.data);
}

/* Two image parts and a text one: a list, each with its own answer. */
static void test_several_images(void)
{
    static const char text[] = "not an image";
    struct buf a = multipart("image", "m.jpg", mosaic, mosaic_len);
    struct buf b = multipart("image", "t.txt", text, sizeof(text) - 1);
    struct buf c = multipart("image", "f.jpg", face, face_len);
    struct buf body;
    struct response rs;
    json_t *root, *list;
    /* Each piece ends with the close delimiter; splice them into one. */
    static const char close_tail[] = "\r\n--" BOUNDARY "--\r\n";
    size_t tail = sizeof(close_tail) - 1, off = 0;
    int rc;

    body.len = a.len + b.len + c.len - 2 * (tail - 2);
    body.data = malloc(body.len);
    if (body.data == NULL) {
        exit(2);
    }
    /* "\r\n--B--\r\n" becomes "\r\n" followed by the next "--B\r\n...". */
    memcpy(body.data, a.data, a.len - tail + 2);
    off = a.len - tail + 2;
    memcpy(body.data + off, b.data, b.len - tail + 2);
    off += b.len - tail + 2;
    memcpy(body.data + off, c.data, c.len);
    rc = serve("POST", "/predict", CT_MULTIPART, &body, 0, &rs);
    CHECK_INT_EQ(rc, 200);
    root = body_json(&rs);
    list = json_object_get(root, "images");
    CHECK_INT_EQ(json_object_size(root), 1);
    CHECK_INT_EQ(json_array_size(list), 3);
    CHECK_INT_EQ(json_array_size(json_object_get(json_array_get(list, 0),
                                                 "faces")), 5);
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 1),
                                                   "error")),
                 "Unsupported image format");
    CHECK_INT_EQ(json_integer_value(json_object_get(json_array_get(list, 1),
                                                    "status")), 415);
    CHECK(json_is_object(json_object_get(json_array_get(list, 2), "image")));
    json_decref(root);
    response_release(&rs);
    free(a.data);
    free(b.data);
    free(c.data);
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
    face = check_read_file(path, &face_len);
    mosaic = check_read_file("images/mosaic_5faces.jpg", &mosaic_len);
    config_defaults(&cfg);
    if (face == NULL || mosaic == NULL ||
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
    RUN(test_mosaic_faces);
    RUN(test_no_face);
    RUN(test_detect_false);
    RUN(test_bad_query);
    RUN(test_images_faces);
    RUN(test_images_draw);
    RUN(test_several_images);
    RUN(test_tight_crop_retry);

    predictor_free(handler.predictor);
    free(mosaic);
    free(face);
    rc = check_summary("handler");
    return rc;
}
