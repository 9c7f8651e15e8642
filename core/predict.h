/*
 * The prediction pipeline of one worker: sniff, check dimensions, decode,
 * preprocess, run the model, read its outputs by the model card. It owns
 * the worker's long-lived objects (libmagic cookie, model, tensor buffer)
 * and knows nothing of how the request arrived.
 */
#ifndef REFACE_CORE_PREDICT_H
#define REFACE_CORE_PREDICT_H

#include <stddef.h>

#include "core/card.h"
#include "core/config.h"
#include "core/result.h"
#include "core/sniff.h"

/* Microseconds spent in each stage of one prediction. */
struct predict_timing {
    long sniff_us;
    long decode_us;
    long preprocess_us;
    long infer_us;
};

struct prediction {
    double age;                      /* years, clamped to 0..100 */
    double age_raw;                  /* the model's output, unclamped */
    double p_male;                   /* probability of male, 0..1 */
    int n_emotions;                  /* as many as the card's labels */
    double emotions[CARD_MAX_LABELS];/* in the card's label order */
    int ranked[CARD_MAX_LABELS];     /* label indices, most likely first */
    int width;                       /* of the decoded image */
    int height;
    enum sniff_format format;
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
    struct card card;
    int card_found;       /* 0: no card, the original Reface defaults */
};

/*
 * Reads cfg->model and its card (config_card_path(); a missing card means
 * card_default()). Returns RF_ERR_IO or RF_ERR_CONFIG with a reason in
 * `err`; release with predictor_source_release() in every case.
 */
enum rf_result predictor_source_read(const struct config *cfg,
                                     struct predictor_source *src,
                                     char *err, size_t errlen);

/* Frees the model bytes; safe on a zeroed or released source. */
void predictor_source_release(struct predictor_source *src);

struct predictor_status {
    double load_ms;        /* model load, optimisation and dummy forward */
    int model_optimized;
    int model_half;
    char note[256];        /* why optimisation was skipped, if it was */
};

/*
 * Builds a worker's predictor from `src` (borrowed; the model bytes are
 * copied into libtorch): libmagic, the model, then one dummy forward that
 * checks the model contract against the card. Run it after fork(). Returns
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
 * Predicts from the image file bytes in `buf` (borrowed). Fills `out` and
 * returns RF_OK, or returns RF_ERR_UNSUPPORTED, RF_ERR_TOO_MANY_PIXELS,
 * RF_ERR_DECODE, RF_ERR_NOMEM, RF_ERR_MODEL with detail in `err` (for the
 * log, not for the client). `out->format` is set as soon as it is known.
 */
enum rf_result predictor_run(struct predictor *p, const unsigned char *buf,
                             size_t len, struct prediction *out, char *err,
                             size_t errlen);

#endif
