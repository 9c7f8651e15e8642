/*
 * Image decoding with stb_image, behind a pixel cap that is checked from the
 * header before any pixel buffer is allocated. Only the JPEG, PNG, BMP and
 * GIF (first frame) decoders are compiled in: see core/image.c for why.
 * img_decode_scaled() adds what serving needs: large JPEGs decoded by
 * libjpeg-turbo straight to a reduced size, and EXIF orientation applied.
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

/* How img_decode_scaled() got its image from the file. */
struct img_info {
    int file_width;   /* the file's own size, as stored */
    int file_height;
    int scale;        /* the file's size over the decoded one: 1, 2, 4, 8 */
    int orientation;  /* EXIF orientation applied (1..8; 1 = as stored) */
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

/*
 * Like img_decode(), for a caller that will shrink the image to about
 * `min_side` pixels (0: it needs every pixel):
 * - a JPEG whose shorter side is at least 2 * min_side is decoded by
 *   libjpeg-turbo at the smallest of 1/2, 1/4 and 1/8 of its size that keeps
 *   the shorter side at min_side or more; its DCT does the shrinking at a
 *   fraction of the cost of a full decode.
 *   Anything libjpeg-turbo does not decode cleanly (a warning counts) goes
 *   to stb_image at full size, which then decides, as img_decode() does;
 * - a JPEG's EXIF orientation (read with libexif) is applied, so the image
 *   comes out the way a viewer shows it (width and height swap for a
 *   quarter turn).
 * The pixel cap applies to the file's full size, whatever the scale.
 * `info` (NULL allowed) says what was done, to map positions in `out` back
 * to the file.
 */
enum rf_result img_decode_scaled(const unsigned char *buf, size_t len,
                                 long long max_pixels, int min_side,
                                 struct img *out, struct img_info *info,
                                 char *err, size_t errlen);

/* Frees the pixels and zeroes `im`; safe on a zeroed or released img. */
void img_release(struct img *im);

#endif
