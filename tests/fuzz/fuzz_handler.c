/*
 * libFuzzer harness for the whole request handler (fcgi/handler.c): from
 * what the FastCGI front end hands over (method, path, Content-Type, body)
 * to the finished response, with no socket. Everything below the handler
 * runs for real (multipart, libmagic, stb_image, preprocess, core/predict,
 * the JSON replies) except libtorch, replaced by tests/fuzz/fake_model.c
 * (why: see that file).
 *
 * An input is three lines, method, path (with "?query" if any) and
 * Content-Type ("-" for none),
 * then the body. Besides sanitizer reports it traps when a response breaks
 * the API's promises: a status outside the error table, an error body that
 * is not {"error": "..."} exactly, header lines that could split, or a 200
 * /predict answer whose JSON lacks its fields.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/predict.h"
#include "fcgi/handler.h"

static struct config fuzz_cfg;
static struct predictor *fuzz_predictor;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct predictor_source src;
    struct predictor_status st;
    static char fake_bytes[] = "fake";
    char err[256];

    (void)argc;
    (void)argv;
    config_defaults(&fuzz_cfg);
    /* Same code paths as the defaults, with buffers a fuzzer can afford. */
    fuzz_cfg.max_pixels = 4LL * 1000 * 1000;
    fuzz_cfg.max_body = 1 << 20;

    memset(&src, 0, sizeof(src));
    src.model = fake_bytes;
    src.model_len = sizeof(fake_bytes);
    /* The fake plays the detector too, so detection paths are fuzzed. */
    src.detector = fake_bytes;
    src.detector_len = sizeof(fake_bytes);
    card_default(&src.card, "fuzz");
    fuzz_predictor = predictor_new(&fuzz_cfg, &src, &st, err, sizeof(err));
    if (fuzz_predictor == NULL) {
        fprintf(stderr, "fuzz_handler: %s\n", err);
        abort();
    }
    return 0;
}

/* Splits off one line as a fresh string; NULL when the input runs out. */
static char *fuzz_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n;
    char *s;

    if (nl == NULL) {
        return NULL;
    }
    n = (size_t)(nl - *data);
    s = malloc(n + 1);
    if (s == NULL) {
        abort();
    }
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += n + 1;
    *size -= n + 1;
    return s;
}

static bool fuzz_status_known(int status)
{
    static const int known[] = { 200, 400, 404, 405, 413, 415, 500, 503 };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (known[i] == status) {
            return true;
        }
    }
    return false;
}

/* Every error body is exactly one key, "error", with a string value. */
static void fuzz_check_error_body(const struct response *rs)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)rs->body, rs->body_len, 0, &jerr);

    if (j == NULL || !json_is_object(j) || json_object_size(j) != 1 ||
        !json_is_string(json_object_get(j, "error"))) {
        __builtin_trap();
    }
    json_decref(j);
}

/* One image's reply: face_detected, image, faces, and the largest face's
 * fields exactly when there is a face. */
static void fuzz_check_result(json_t *j)
{
    static const char *const keys[] = {
        "age", "gender", "gender_name", "gender_probability", "emotion",
        "emotion_confidence", "emotions",
    };
    json_t *faces = json_object_get(j, "faces");

    if (!json_is_object(j) ||
        !json_is_boolean(json_object_get(j, "face_detected")) ||
        !json_is_object(json_object_get(j, "image")) ||
        !json_is_array(faces) ||
        json_array_size(faces) > PREDICT_MAX_FACES) {
        __builtin_trap();
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if ((json_object_get(j, keys[i]) == NULL) !=
            (json_array_size(faces) == 0)) {
            __builtin_trap();
        }
    }
}

static void fuzz_check_prediction(const struct response *rs)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)rs->body, rs->body_len, 0, &jerr);
    json_t *list, *item;
    size_t i;

    if (j == NULL || !json_is_object(j)) {
        __builtin_trap();
    }
    list = json_object_get(j, "images");
    if (list == NULL) {
        fuzz_check_result(j);
    } else {
        if (!json_is_array(list) || json_array_size(list) < 2) {
            __builtin_trap();
        }
        json_array_foreach(list, i, item) {
            if (json_object_get(item, "error") != NULL) {
                if (!json_is_string(json_object_get(item, "error")) ||
                    !json_is_integer(json_object_get(item, "status"))) {
                    __builtin_trap();
                }
            } else {
                fuzz_check_result(item);
            }
        }
    }
    json_decref(j);
}

static void fuzz_check(const struct request *rq, const struct response *rs)
{
    const char *h = rs->headers;

    if (!fuzz_status_known(rs->status) || rs->content_type == NULL ||
        strlen(rs->headers) != rs->headers_len) {
        __builtin_trap();
    }
    /* Header lines end in CRLF and hold no other CR or LF. */
    while (*h != '\0') {
        const char *end = strstr(h, "\r\n");

        if (end == NULL || memchr(h, '\n', (size_t)(end - h)) != NULL ||
            memchr(h, '\r', (size_t)(end - h)) != NULL) {
            __builtin_trap();
        }
        h = end + 2;
    }
    if (rs->status != 200) {
        fuzz_check_error_body(rs);
    } else if (strcmp(rq->path, "/predict") == 0) {
        fuzz_check_prediction(rs);
    } else if (strcmp(rq->path, "/images") == 0 && rs->owned == NULL) {
        /* The upload comes back unchanged (not drawn on): it lies inside
         * the body. */
        if (rs->body < rq->body ||
            rs->body + rs->body_len > rq->body + rq->body_len) {
            __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct handler h = { .cfg = &fuzz_cfg, .predictor = fuzz_predictor };
    char *method = fuzz_line(&data, &size);
    char *path = fuzz_line(&data, &size);
    char *ctype = fuzz_line(&data, &size);
    struct request rq;
    struct response rs;
    unsigned char *body;

    if (method == NULL || path == NULL || ctype == NULL) {
        free(method);
        free(path);
        free(ctype);
        return 0;
    }
    /* An exact-size copy, so ASan catches a read past the body. */
    body = malloc(size > 0 ? size : 1);
    if (body == NULL) {
        abort();
    }
    memcpy(body, data, size);

    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.path = path;
    /* "path?query" carries the query string, as nginx splits it. */
    if (strchr(path, '?') != NULL) {
        rq.query = strchr(path, '?') + 1;
        *strchr(path, '?') = '\0';
    }
    rq.content_type = strcmp(ctype, "-") == 0 ? NULL : ctype;
    rq.body = body;
    rq.body_len = size;

    handler_serve(&h, &rq, &rs);
    fuzz_check(&rq, &rs);
    response_release(&rs);

    free(body);
    free(ctype);
    free(path);
    free(method);
    return 0;
}
