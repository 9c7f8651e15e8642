/*
 * The prediction pipeline of one worker: sniff, check dimensions, decode,
 * find the faces, crop and preprocess each, run the model on all of them in
 * one batch, read its outputs by the model card. It owns the worker's
 * long-lived objects (libmagic cookie, models, tensor buffers) and knows
 * nothing of how the request arrived.
 */
#ifndef REFACE_CORE_PREDICT_H
#define REFACE_CORE_PREDICT_H

#include <stddef.h>

#include "core/card.h"
#include "core/config.h"
#include "core/detect.h"
#include "core/image.h"
#include "core/preprocess.h"
#include "core/result.h"
#include "core/sniff.h"

/* No request gets more faces than this (the API's hard cap on max_faces). */
#define PREDICT_MAX_FACES DETECT_MAX_FACES

/*
 * Microseconds spent in each stage of one prediction. Detection is counted
 * in preprocess_us (its input) and infer_us (its forward); detect_us is the
 * detector's forward alone, a part of infer_us.
 */
struct predict_timing {
    long sniff_us;
    long decode_us;
    long preprocess_us;
    long infer_us;
    long detect_us;
};

/* One face's attributes, from one row of the model's output. */
struct prediction {
    double age;                      /* years, clamped to 0..100 */
    double age_raw;                  /* the model's output, unclamped */
    double p_male;                   /* probability of male, 0..1 */
    int n_emotions;                  /* as many as the card's labels */
    double emotions[CARD_MAX_LABELS];/* in the card's label order */
    int ranked[CARD_MAX_LABELS];     /* label indices, most likely first */
};

struct predict_face {
    /* Where the face is, in integer pixels of the decoded image, inside it. */
    int x;
    int y;
    int width;
    int height;
    double score;                    /* the detector's; -1: not detected */
    /*
     * The rectangle the attribute model was given: the detector's box grown
     * by face_margin and clipped, or the centred crop. Training tools read
     * it to compute features on the very pixels the server uses.
     */
    struct prep_rect crop;
    struct prediction attr;
};

/* What one request asks for (the API's query parameters). */
struct predict_options {
    int detect;     /* 1: find faces; 0: the centred crop is the one face */
    int max_faces;  /* keep the largest this many, 1..PREDICT_MAX_FACES */
    int min_face;   /* drop detected faces narrower or shorter, pixels */
};

/* detect 1, max_faces 10, min_face 0: the API's defaults. */
void predict_options_default(struct predict_options *opt);

struct predict_result {
    int width;                       /* of the decoded image */
    int height;
    enum sniff_format format;
    /*
     * 1: the faces come from the detector (n_faces may be 0: no face).
     * 0: no detection ran (asked for, or no detector loaded); faces[0]
     * is the whole image, predicted from its centred crop.
     */
    int face_detected;
    int n_faces;
    struct predict_face faces[PREDICT_MAX_FACES]; /* largest first */
    struct predict_timing timing;
};

struct predictor;

/*
 * What a worker needs from disk, read by the master before fork() so that
 * workers need no file access and can run unprivileged: the model file's
 * bytes and its card. Nothing here touches libtorch.
 */
struct predictor_source {
    void *model;          /* owned: the TorchScript file's bytes */
    size_t model_len;
    void *detector;       /* owned: the detector's bytes; NULL: none */
    size_t detector_len;
    struct card card;
    int card_found;       /* 0: no card, the original Reface defaults */
};

/*
 * Reads cfg->model and its card (config_card_path(); a missing card means
 * card_default()), and cfg->detector when it is set and the file exists
 * (a missing detector file means no detection, not an error). Returns
 * RF_ERR_IO or RF_ERR_CONFIG with a reason in `err`; release with
 * predictor_source_release() in every case.
 */
enum rf_result predictor_source_read(const struct config *cfg,
                                     struct predictor_source *src,
                                     char *err, size_t errlen);

/* Frees the model bytes; safe on a zeroed or released source. */
void predictor_source_release(struct predictor_source *src);

struct predictor_status {
    double load_ms;        /* models' load, optimisation and dummy forwards */
    int detector;          /* a face detector is loaded */
    int detector_optimized;
    int model_optimized;
    int model_half;
    char note[256];        /* why optimisation was skipped, if it was */
};

/*
 * Builds a worker's predictor from `src` (borrowed; the model bytes are
 * copied into libtorch): libmagic, the model, then one dummy forward that
 * checks the model contract against the card; the same for the detector
 * when `src` has one (its output must be DETECT_ANCHORS rows of
 * DETECT_ANCHOR_VALUES). Run it after fork(). Returns
 * NULL and a reason in `err` that says what is wrong (for the contract:
 * the shape found and the shape expected).
 */
struct predictor *predictor_new(const struct config *cfg,
                                const struct predictor_source *src,
                                struct predictor_status *status,
                                char *err, size_t errlen);

/* Frees everything the predictor owns; NULL is allowed. */
void predictor_free(struct predictor *p);

/* The model card in use (borrowed, lives as long as `p`). */
const struct card *predictor_card(const struct predictor *p);

/*
 * Predicts from the image file bytes in `buf` (borrowed) with `opt`. Fills
 * `out` and returns RF_OK (also when no face is found: n_faces 0), or
 * returns RF_ERR_UNSUPPORTED, RF_ERR_TOO_MANY_PIXELS, RF_ERR_DECODE,
 * RF_ERR_NOMEM, RF_ERR_MODEL with detail in `err` (for the log, not for the
 * client). `out->format` is set as soon as it is known.
 */
enum rf_result predictor_run(struct predictor *p, const unsigned char *buf,
                             size_t len, const struct predict_options *opt,
                             struct predict_result *out, char *err,
                             size_t errlen);

/*
 * The same from pixels already decoded (borrowed), for callers that need
 * the pixels afterwards (drawing the boxes); `out->format` is left as is.
 */
enum rf_result predictor_run_image(struct predictor *p, const struct img *im,
                                   const struct predict_options *opt,
                                   struct predict_result *out, char *err,
                                   size_t errlen);

/*
 * Sniffs and decodes `buf` under the predictor's pixel cap into `im` (the
 * caller releases it with img_release()); errors as predictor_run's.
 * `detect` says whether the pixels will go to the detector: a large JPEG is
 * then decoded at a larger scale than the centred crop alone needs.
 */
enum rf_result predictor_decode(struct predictor *p, const unsigned char *buf,
                                size_t len, int detect,
                                struct predict_result *out, struct img *im,
                                char *err, size_t errlen);

#endif
