/*
 * Image decoding with stb_image, behind a pixel cap that is checked from the
 * header before any pixel buffer is allocated. Only the JPEG, PNG, BMP and
 * GIF (first frame) decoders are compiled in: see core/image.c for why.
 */
#ifndef REFACE_CORE_IMAGE_H
#define REFACE_CORE_IMAGE_H

#include <stddef.h>

#include "core/result.h"

/* An 8-bit RGB image, rows top to bottom, no padding between rows. */
struct img {
    int width;
    int height;
    unsigned char *rgb; /* owned; 3 * width * height bytes */
};

/*
 * Reads width and height from the header without decoding. Returns
 * RF_ERR_DECODE if the header is not one of the compiled formats, and
 * RF_ERR_TOO_MANY_PIXELS if stb itself refuses the dimensions as too large.
 */
enum rf_result img_probe(const unsigned char *buf, size_t len, int *width,
                         int *height);

/*
 * Decodes `buf` to RGB into `out` (which the caller releases with
 * img_release()). Returns RF_ERR_TOO_MANY_PIXELS, before decoding, when
 * width * height exceeds `max_pixels`; RF_ERR_DECODE with stb's reason in
 * `err` for a corrupt or truncated file; RF_ERR_NOMEM.
 */
enum rf_result img_decode(const unsigned char *buf, size_t len,
                          long long max_pixels, struct img *out,
                          char *err, size_t errlen);

/* Frees the pixels and zeroes `im`; safe on a zeroed or released img. */
void img_release(struct img *im);

#endif
