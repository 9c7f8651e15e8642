/*
 * Pictures of a prediction: each face's box and a short label drawn onto
 * the decoded pixels, then the result encoded as PNG, for clients that
 * would rather look than read (/images?draw=true). The PNG encoder is
 * stb_image_write, kept here so that core/image.c stays the decoder only.
 */
#ifndef REFACE_CORE_DRAW_H
#define REFACE_CORE_DRAW_H

#include <stddef.h>

#include "core/card.h"
#include "core/image.h"
#include "core/predict.h"

/*
 * Draws every face of `r` onto `im` (modified in place): its box, and above
 * it (below when there is no room) a label "<gender> <age> <emotion>" in a
 * built-in 5x7 font scaled to the image. Labels use the card's names.
 */
void draw_faces(struct img *im, const struct predict_result *r,
                const struct card *card);

/*
 * Encodes `im` as an RGB PNG into a new buffer (the caller frees it) and
 * its size into `len`. Returns NULL when memory runs out.
 */
unsigned char *draw_png(const struct img *im, size_t *len);

#endif
