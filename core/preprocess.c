/* Crop, pad, legacy bilinear resize and normalisation (core/preprocess.h). */
#include "core/preprocess.h"

#include <math.h>
#include <stddef.h>

/* Where one output column (or row) samples the padded square. */
struct prep_tap {
    int lo;      /* index in the rectangle, or -1 for padding */
    int hi;
    float frac;  /* weight of `hi` */
};

void prep_centre_rect(int width, int height, double crop,
                      struct prep_rect *rect)
{
    int w = (int)lround(width * crop);
    int h = (int)lround(height * crop);

    rect->width = w < 1 ? 1 : (w > width ? width : w);
    rect->height = h < 1 ? 1 : (h > height ? height : h);
    rect->x = (width - rect->width) / 2;
    rect->y = (height - rect->height) / 2;
}

/*
 * Fills taps for one axis. The rectangle's extent `len` sits inside a
 * square of side `side` after `before` padding lines. TensorFlow's legacy
 * rule samples source position dst * side / size, computed in float32 as
 * TF does, so that our samples land where face-api's did.
 */
static void make_taps(int len, int side, int before, int size,
                      struct prep_tap *taps)
{
    float scale = (float)side / (float)size;

    for (int d = 0; d < size; d++) {
        float src = (float)d * scale;
        int lo = (int)floorf(src);
        int hi = lo + 1 < side ? lo + 1 : side - 1;

        taps[d].frac = src - (float)lo;
        lo -= before;
        hi -= before;
        taps[d].lo = lo >= 0 && lo < len ? lo : -1;
        taps[d].hi = hi >= 0 && hi < len ? hi : -1;
    }
}

static inline float pixel(const unsigned char *row, int x, int c)
{
    return x < 0 || row == NULL ? 0.0f : (float)row[3 * x + c];
}

enum rf_result prep_tensor(const struct img *im, const struct prep_rect *rect,
                           const struct prep_spec *spec, float *out)
{
    struct prep_tap xt[PREP_MAX_SIZE];
    struct prep_tap yt[PREP_MAX_SIZE];
    int side, diff, after, pad_x = 0, pad_y = 0;
    size_t plane;
    float scale[3], shift[3];

    if (spec->size < 1 || spec->size > PREP_MAX_SIZE) {
        return RF_ERR_CONFIG;
    }
    if (rect->width < 1 || rect->height < 1 || rect->x < 0 || rect->y < 0 ||
        rect->x > im->width - rect->width ||
        rect->y > im->height - rect->height) {
        return RF_ERR_BAD_REQUEST;
    }

    /* face-api pads after by round(diff / 2) and before by the rest. */
    side = rect->width > rect->height ? rect->width : rect->height;
    diff = side - (rect->width < rect->height ? rect->width : rect->height);
    after = (diff + 1) / 2;
    if (rect->width < rect->height) {
        pad_x = diff - after;
    } else {
        pad_y = diff - after;
    }
    make_taps(rect->width, side, pad_x, spec->size, xt);
    make_taps(rect->height, side, pad_y, spec->size, yt);

    /* (v / 255 - mean) / std folded into one multiply and one add. */
    for (int c = 0; c < 3; c++) {
        scale[c] = 1.0f / (255.0f * spec->std[c]);
        shift[c] = -spec->mean[c] / spec->std[c];
    }

    plane = (size_t)spec->size * (size_t)spec->size;
    for (int dy = 0; dy < spec->size; dy++) {
        const unsigned char *top = NULL, *bottom = NULL;
        size_t stride = (size_t)im->width * 3;

        if (yt[dy].lo >= 0) {
            top = im->rgb + (size_t)(rect->y + yt[dy].lo) * stride +
                  (size_t)rect->x * 3;
        }
        if (yt[dy].hi >= 0) {
            bottom = im->rgb + (size_t)(rect->y + yt[dy].hi) * stride +
                     (size_t)rect->x * 3;
        }

        for (int dx = 0; dx < spec->size; dx++) {
            const struct prep_tap *t = &xt[dx];
            size_t at = (size_t)dy * (size_t)spec->size + (size_t)dx;

            for (int c = 0; c < 3; c++) {
                float tl = pixel(top, t->lo, c), tr = pixel(top, t->hi, c);
                float bl = pixel(bottom, t->lo, c);
                float br = pixel(bottom, t->hi, c);
                float upper = tl + (tr - tl) * t->frac;
                float lower = bl + (br - bl) * t->frac;
                float v = upper + (lower - upper) * yt[dy].frac;

                out[(size_t)c * plane + at] = v * scale[c] + shift[c];
            }
        }
    }
    return RF_OK;
}
