/*
 * Face detection around face-api's SSD MobileNet v1 (models/detector.pt):
 * the detector's input tensor from decoded pixels, and the selection of
 * faces from its per-anchor output (score threshold, non-maximum
 * suppression, removal of the square padding). The network itself, with
 * its box decoding, runs in the model wrapper; nothing here calls libtorch.
 */
#ifndef REFACE_CORE_DETECT_H
#define REFACE_CORE_DETECT_H

#include "core/image.h"
#include "core/result.h"

/* The side of the detector's input; its 5118 anchors are made for it. */
#define DETECT_INPUT_SIZE 512
/* Anchors of the 512 input, and values per anchor in the output row. */
#define DETECT_ANCHORS 5118
#define DETECT_ANCHOR_VALUES 5
/* No request gets more faces than this, whatever it asks for. */
#define DETECT_MAX_FACES 50

/* One face, in pixels of the decoded image (not clipped, not rounded). */
struct detect_box {
    double x;
    double y;
    double width;
    double height;
    double score;
};

struct detect_params {
    double min_score;  /* keep anchors whose score is above this */
    double max_iou;    /* drop a box overlapping a kept one by more */
    int max_faces;     /* 1..DETECT_MAX_FACES */
};

/* face-api's SSD options: minConfidence 0.5, IoU 0.5 (maxResults capped). */
void detect_params_default(struct detect_params *params);

/*
 * Writes the detector's input for `im` into `out` (3 * size * size floats,
 * CHW, RGB 0..255): the image padded with black at the bottom or the right
 * to a square (never centred, unlike the face crops), then resized to
 * size x size with TensorFlow's legacy bilinear rule, as face-api's
 * toBatchTensor(size, false) does. Returns RF_ERR_CONFIG for a size outside
 * 1..1024 and RF_ERR_BAD_REQUEST for an empty image.
 */
enum rf_result detect_input(const struct img *im, int size, float *out);

/*
 * Selects faces from one image's detector output `row` (`anchors` groups
 * of score, ymin, xmin, ymax, xmax, fractions of the padded square):
 * anchors scoring above params->min_score, best first, each kept unless
 * its IoU with a box already kept exceeds params->max_iou, at most
 * params->max_faces and `cap`. Boxes are then clipped to the image's part
 * of the square and scaled to pixels of a width x height image, exactly as
 * face-api's locateFaces does. Writes them to `out` best score first and
 * returns how many, or -1 if memory runs out.
 */
int detect_select(const float *row, int anchors, int width, int height,
                  const struct detect_params *params, struct detect_box *out,
                  int cap);

#endif
