/*
 * libFuzzer harness for core/multipart. An input is a Content-Type line, a
 * '\n', then the body; the body is also parsed with a fixed boundary, so
 * mutations of the body alone reach the parser even when the Content-Type
 * line is broken. Besides crashes, it traps on broken invariants: parts
 * that leave the body, or mp_find and mp_parse judging a body differently.
 *
 * clang-14 -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     core/multipart.c core/result.c tests/fuzz/fuzz_multipart.c \
 *     -o /tmp/fuzz_mp
 * /tmp/fuzz_mp -dict=tests/fuzz/multipart.dict -max_total_time=120 \
 *     /tmp/corpus tests/fuzz/corpus/multipart
 *
 * The seed corpus is the unit cases joined in this input form:
 *   cd tests/unit/multipart && for n in [a-z]*; do [ -d "$n" ] &&
 *   cat "$n/content_type" "$n/body" > ../../fuzz/corpus/multipart/"$n"; done
 */
#include "core/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_body {
    const unsigned char *body;
    size_t len;
    size_t named;
};

static bool fuzz_within(const void *p, size_t n, const struct fuzz_body *b)
{
    const unsigned char *q = p;
    size_t off;

    if (q < b->body) {
        return false;
    }
    off = (size_t)(q - b->body);
    return off <= b->len && n <= b->len - off;
}

static bool fuzz_check_part(const struct mp_part *part, void *ctx)
{
    struct fuzz_body *b = ctx;

    if (part->name == NULL || !fuzz_within(part->name, part->name_len, b) ||
        !fuzz_within(part->data, part->len, b) ||
        (part->filename != NULL &&
         !fuzz_within(part->filename, part->filename_len, b))) {
        __builtin_trap();
    }
    b->named++;
    return true;
}

static void fuzz_body(const unsigned char *body, size_t len,
                      const char *boundary)
{
    static const struct mp_limits limits = { 8, 256 };
    struct fuzz_body b = { body, len, 0 };
    struct mp_part part;
    enum rf_result prc, frc;
    char err[128];

    prc = mp_parse(body, len, boundary, &limits, fuzz_check_part, &b,
                   err, sizeof err);
    frc = mp_find(body, len, boundary, &limits, "image", &part,
                  err, sizeof err);
    if (prc != (frc == RF_ERR_NO_IMAGE ? RF_OK : frc)) {
        __builtin_trap();
    }
    if (frc == RF_OK && (!mp_part_name_eq(&part, "image") ||
                         !fuzz_within(part.data, part.len, &b))) {
        __builtin_trap();
    }
    if (frc != RF_OK && strlen(err) == 0) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ct_len = nl != NULL ? (size_t)(nl - data) : size;
    char boundary[MP_BOUNDARY_SIZE];
    unsigned char *body;
    size_t body_len;
    char *ct;

    ct = malloc(ct_len + 1);
    if (ct == NULL) {
        return 0;
    }
    memcpy(ct, data, ct_len);
    ct[ct_len] = '\0';

    /* An exact-size copy, so ASan catches a read past the body. */
    body_len = nl != NULL ? size - ct_len - 1 : 0;
    body = malloc(body_len > 0 ? body_len : 1);
    if (body == NULL) {
        free(ct);
        return 0;
    }
    if (body_len > 0) {
        memcpy(body, nl + 1, body_len);
    }

    if (mp_boundary(ct, boundary, sizeof boundary) == RF_OK) {
        if (strlen(boundary) == 0 || strlen(boundary) > MP_BOUNDARY_MAX) {
            __builtin_trap();
        }
        fuzz_body(body, body_len, boundary);
    }
    fuzz_body(body, body_len, "XbOuNdArY");

    free(body);
    free(ct);
    return 0;
}
