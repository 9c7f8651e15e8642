/*
 * From decoded pixels to the model's input tensor: cut a rectangle, pad it
 * to a square, resize, normalise. The resize is TensorFlow's legacy
 * bilinear rule (align_corners and half-pixel centres both off), the one
 * face-api applied when its nets were trained and evaluated: any other
 * filter moves their age estimates by years (docs/preprocessing.md).
 */
#ifndef REFACE_CORE_PREPROCESS_H
#define REFACE_CORE_PREPROCESS_H

#include "core/image.h"
#include "core/result.h"

#define PREP_MAX_SIZE 1024

struct prep_rect {
    int x;
    int y;
    int width;
    int height;
};

struct prep_spec {
    int size;       /* output side in pixels, 1..PREP_MAX_SIZE */
    float mean[3];  /* per RGB channel, on the 0..1 scale */
    float std[3];
};

/*
 * The centred rectangle covering `crop` (0 < crop <= 1) of each side of a
 * width x height image, at least one pixel.
 */
void prep_centre_rect(int width, int height, double crop,
                      struct prep_rect *rect);

/*
 * Writes the float32 CHW tensor (3 * size * size values) for `rect` of `im`
 * into `out`: the rectangle is padded with black to a square the way
 * face-api does it (the odd extra line goes to the bottom or right), resized
 * to size x size with the legacy bilinear rule, scaled to 0..1 and
 * normalised with mean and std. Returns RF_ERR_BAD_REQUEST if the rectangle
 * is empty or outside the image, RF_ERR_CONFIG for a bad size.
 */
enum rf_result prep_tensor(const struct img *im, const struct prep_rect *rect,
                           const struct prep_spec *spec, float *out);

#endif
