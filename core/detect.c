/* Detector input and face selection (see core/detect.h). */
#include "core/detect.h"

#include <math.h>
#include <stdlib.h>

#include "core/preprocess.h"

/* One anchor above the threshold, waiting for suppression. */
struct detect_candidate {
    float score;
    int anchor;
};

void detect_params_default(struct detect_params *params)
{
    params->min_score = 0.5;
    params->max_iou = 0.5;
    params->max_faces = DETECT_MAX_FACES;
}

/*
 * Where output line d samples the square: legacy rule src = d * side/size
 * in float32, as TensorFlow computes it; -1 marks the black padding.
 */
static void detect_taps(int len, int side, int size, int *lo, int *hi,
                        float *frac)
{
    float scale = (float)side / (float)size;

    for (int d = 0; d < size; d++) {
        float src = (float)d * scale;
        int l = (int)floorf(src);
        int h = l + 1 < side ? l + 1 : side - 1;

        frac[d] = src - (float)l;
        lo[d] = l < len ? l : -1;
        hi[d] = h < len ? h : -1;
    }
}

static inline float detect_px(const unsigned char *row, int x, int c)
{
    return row == NULL || x < 0 ? 0.0f : (float)row[3 * x + c];
}

enum rf_result detect_input(const struct img *im, int size, float *out)
{
    int xlo[PREP_MAX_SIZE], xhi[PREP_MAX_SIZE];
    int ylo[PREP_MAX_SIZE], yhi[PREP_MAX_SIZE];
    float xf[PREP_MAX_SIZE], yf[PREP_MAX_SIZE];
    size_t plane = (size_t)size * (size_t)size;
    size_t stride;
    int side;

    if (size < 1 || size > PREP_MAX_SIZE) {
        return RF_ERR_CONFIG;
    }
    if (im->width < 1 || im->height < 1 || im->rgb == NULL) {
        return RF_ERR_BAD_REQUEST;
    }
    side = im->width > im->height ? im->width : im->height;
    detect_taps(im->width, side, size, xlo, xhi, xf);
    detect_taps(im->height, side, size, ylo, yhi, yf);
    stride = (size_t)im->width * 3;

    for (int dy = 0; dy < size; dy++) {
        const unsigned char *top = ylo[dy] < 0 ? NULL :
                                   im->rgb + (size_t)ylo[dy] * stride;
        const unsigned char *bottom = yhi[dy] < 0 ? NULL :
                                      im->rgb + (size_t)yhi[dy] * stride;

        for (int dx = 0; dx < size; dx++) {
            size_t at = (size_t)dy * (size_t)size + (size_t)dx;

            for (int c = 0; c < 3; c++) {
                float tl = detect_px(top, xlo[dx], c);
                float tr = detect_px(top, xhi[dx], c);
                float bl = detect_px(bottom, xlo[dx], c);
                float br = detect_px(bottom, xhi[dx], c);
                float upper = tl + (tr - tl) * xf[dx];
                float lower = bl + (br - bl) * xf[dx];

                out[(size_t)c * plane + at] = upper + (lower - upper) * yf[dy];
            }
        }
    }
    return RF_OK;
}

static int by_score_desc(const void *a, const void *b)
{
    const struct detect_candidate *ca = a, *cb = b;

    if (ca->score != cb->score) {
        return ca->score < cb->score ? 1 : -1;
    }
    /* Equal scores: the lower anchor first, so the order is stable. */
    return ca->anchor - cb->anchor;
}

/* IoU of two [ymin, xmin, ymax, xmax] boxes, face-api's way (doubles,
 * corners taken with min/max, an empty box overlaps nothing). */
static double detect_iou(const float *a, const float *b)
{
    double ay0 = fmin(a[0], a[2]), ax0 = fmin(a[1], a[3]);
    double ay1 = fmax(a[0], a[2]), ax1 = fmax(a[1], a[3]);
    double by0 = fmin(b[0], b[2]), bx0 = fmin(b[1], b[3]);
    double by1 = fmax(b[0], b[2]), bx1 = fmax(b[1], b[3]);
    double area_a = (ay1 - ay0) * (ax1 - ax0);
    double area_b = (by1 - by0) * (bx1 - bx0);
    double inter;

    if (area_a <= 0.0 || area_b <= 0.0) {
        return 0.0;
    }
    inter = fmax(fmin(ay1, by1) - fmax(ay0, by0), 0.0) *
            fmax(fmin(ax1, bx1) - fmax(ax0, bx0), 0.0);
    return inter / (area_a + area_b - inter);
}

int detect_select(const float *row, int anchors, int width, int height,
                  const struct detect_params *params, struct detect_box *out,
                  int cap)
{
    struct detect_candidate *cand;
    int n_cand = 0, n_out = 0;
    int limit = params->max_faces < cap ? params->max_faces : cap;
    int side = width > height ? width : height;
    /* face-api's reshaped input dimensions: the image's part of the square. */
    double rw = round((double)width * DETECT_INPUT_SIZE / side);
    double rh = round((double)height * DETECT_INPUT_SIZE / side);
    double pad_x = DETECT_INPUT_SIZE / rw, pad_y = DETECT_INPUT_SIZE / rh;
    int *kept;

    if (limit <= 0 || anchors <= 0) {
        return 0;
    }
    cand = malloc(sizeof(*cand) * (size_t)anchors);
    kept = malloc(sizeof(*kept) * (size_t)limit);
    if (cand == NULL || kept == NULL) {
        free(cand);
        free(kept);
        return -1;
    }
    for (int i = 0; i < anchors; i++) {
        float s = row[(size_t)i * DETECT_ANCHOR_VALUES];

        if (s > params->min_score) {
            cand[n_cand].score = s;
            cand[n_cand].anchor = i;
            n_cand++;
        }
    }
    qsort(cand, (size_t)n_cand, sizeof(*cand), by_score_desc);

    for (int i = 0; i < n_cand && n_out < limit; i++) {
        const float *box = row + (size_t)cand[i].anchor *
                                 DETECT_ANCHOR_VALUES + 1;
        int suppressed = 0;

        for (int j = 0; j < n_out && !suppressed; j++) {
            const float *other = row + (size_t)kept[j] *
                                       DETECT_ANCHOR_VALUES + 1;

            suppressed = detect_iou(box, other) > params->max_iou;
        }
        if (suppressed) {
            continue;
        }
        kept[n_out] = cand[i].anchor;
        {
            double top = fmax(0.0, box[0]) * pad_y;
            double bottom = fmin(1.0, box[2]) * pad_y;
            double left = fmax(0.0, box[1]) * pad_x;
            double right = fmin(1.0, box[3]) * pad_x;

            out[n_out].x = left * width;
            out[n_out].y = top * height;
            out[n_out].width = (right - left) * width;
            out[n_out].height = (bottom - top) * height;
            out[n_out].score = cand[i].score;
        }
        n_out++;
    }
    free(cand);
    free(kept);
    return n_out;
}
