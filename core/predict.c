/* The per-worker prediction pipeline (see core/predict.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/predict.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/image.h"
#include "core/model.h"
#include "core/preprocess.h"

/* Room for age, P(male) and every label of the largest allowed card. */
#define PREDICT_MAX_COLS (2 + CARD_MAX_LABELS)
/* Forwards run at start-up after the contract check (see predictor_new). */
#define PREDICT_WARMUP_RUNS 2

struct predictor {
    struct sniffer *sniffer;
    struct model *model;
    struct card card;
    struct prep_spec spec;
    long long max_pixels;
    double crop;
    float *tensor;               /* 3 * size * size, reused per request */
};

static long elapsed_us(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000000L +
           (now.tv_nsec - since->tv_nsec) / 1000L;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

/*
 * Reads one output row by the contract: age, P(male), one probability per
 * label. Rejects values a correct model cannot give, so that a broken model
 * is caught at start-up and never answers with NaN.
 */
static enum rf_result read_row(const struct card *card, const float *row,
                               struct prediction *out, char *err,
                               size_t errlen)
{
    double sum = 0.0;

    if (!isfinite(row[0]) || !isfinite(row[1]) || row[1] < 0.0f ||
        row[1] > 1.0f) {
        snprintf(err, errlen, "age %g or P(male) %g is not valid",
                 (double)row[0], (double)row[1]);
        return RF_ERR_MODEL;
    }
    out->age_raw = row[0];
    out->age = row[0] < 0.0f ? 0.0 : (row[0] > 100.0f ? 100.0 : row[0]);
    out->p_male = row[1];
    out->n_emotions = card->n_labels;
    for (int i = 0; i < card->n_labels; i++) {
        float v = row[2 + i];

        if (!isfinite(v) || v < 0.0f || v > 1.0f) {
            snprintf(err, errlen, "emotion %d probability %g is not valid",
                     i, (double)v);
            return RF_ERR_MODEL;
        }
        out->emotions[i] = v;
        sum += v;
    }
    if (fabs(sum - 1.0) > 1e-2) {
        snprintf(err, errlen, "emotion probabilities sum to %g, not 1", sum);
        return RF_ERR_MODEL;
    }

    /* Insertion sort: at most 16 labels, ties keep the card's order. */
    for (int i = 0; i < card->n_labels; i++) {
        int j = i;

        while (j > 0 && out->emotions[out->ranked[j - 1]] <
                            out->emotions[i]) {
            out->ranked[j] = out->ranked[j - 1];
            j--;
        }
        out->ranked[j] = i;
    }
    return RF_OK;
}

static enum rf_result check_contract(struct predictor *p, char *err,
                                     size_t errlen)
{
    float out[PREDICT_MAX_COLS];
    struct prediction pred;
    char detail[256];
    int cols = 0;
    size_t n = 3 * (size_t)p->spec.size * (size_t)p->spec.size;
    enum rf_result r;

    /* Zeros are the training set's mean colour: a flat, plausible image. */
    for (size_t i = 0; i < n; i++) {
        p->tensor[i] = 0.0f;
    }
    r = model_forward(p->model, p->tensor, 1, p->spec.size, out,
                      PREDICT_MAX_COLS, &cols, detail, sizeof(detail));
    if (r != RF_OK) {
        snprintf(err, errlen, "model contract: forward on [1,3,%d,%d] "
                 "failed: %s", p->spec.size, p->spec.size, detail);
        return RF_ERR_CONTRACT;
    }
    if (cols != 2 + p->card.n_labels) {
        snprintf(err, errlen, "model contract: output has %d columns, the "
                 "card's %d emotion labels need %d (age, P(male), one per "
                 "label)", cols, p->card.n_labels, 2 + p->card.n_labels);
        return RF_ERR_CONTRACT;
    }
    memset(&pred, 0, sizeof(pred));
    r = read_row(&p->card, out, &pred, detail, sizeof(detail));
    if (r != RF_OK) {
        snprintf(err, errlen, "model contract: %s", detail);
        return RF_ERR_CONTRACT;
    }
    return RF_OK;
}

enum rf_result predictor_source_read(const struct config *cfg,
                                     struct predictor_source *src,
                                     char *err, size_t errlen)
{
    char card_path[CONFIG_PATH_MAX + 8];
    struct stat st;
    size_t got;
    FILE *f;

    memset(src, 0, sizeof(*src));
    f = fopen(cfg->model, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open model \"%s\": %s", cfg->model,
                 strerror(errno));
        return RF_ERR_IO;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0) {
        snprintf(err, errlen, "model \"%s\" is not a non-empty file",
                 cfg->model);
        fclose(f);
        return RF_ERR_IO;
    }
    src->model = malloc((size_t)st.st_size);
    if (src->model == NULL) {
        snprintf(err, errlen, "out of memory reading \"%s\"", cfg->model);
        fclose(f);
        return RF_ERR_NOMEM;
    }
    got = fread(src->model, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        snprintf(err, errlen, "short read on \"%s\"", cfg->model);
        return RF_ERR_IO;
    }
    src->model_len = got;

    card_default(&src->card, base_name(cfg->model));
    config_card_path(cfg, card_path, sizeof(card_path));
    if (stat(card_path, &st) == 0 || cfg->card[0] != '\0') {
        enum rf_result r = card_load(card_path, &src->card, err, errlen);

        if (r != RF_OK) {
            return r;
        }
        src->card_found = 1;
    }
    return RF_OK;
}

void predictor_source_release(struct predictor_source *src)
{
    if (src == NULL) {
        return;
    }
    free(src->model);
    memset(src, 0, sizeof(*src));
}

struct predictor *predictor_new(const struct config *cfg,
                                const struct predictor_source *src,
                                struct predictor_status *status,
                                char *err, size_t errlen)
{
    struct predictor *p;
    struct model_info info;
    struct timespec start;

    memset(status, 0, sizeof(*status));
    clock_gettime(CLOCK_MONOTONIC, &start);

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->max_pixels = cfg->max_pixels;
    p->crop = cfg->crop;
    p->card = src->card;

    p->spec.size = p->card.input_size;
    memcpy(p->spec.mean, p->card.mean, sizeof(p->spec.mean));
    memcpy(p->spec.std, p->card.std, sizeof(p->spec.std));
    p->tensor = malloc(sizeof(float) * 3 * (size_t)p->spec.size *
                       (size_t)p->spec.size);
    if (p->tensor == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    p->sniffer = sniff_new(err, errlen);
    if (p->sniffer == NULL) {
        goto fail;
    }

    p->model = model_load(src->model, src->model_len, cfg->threads, &info,
                          err, errlen);
    if (p->model == NULL) {
        goto fail;
    }
    status->model_optimized = info.optimized;
    status->model_half = info.half_weights;
    snprintf(status->note, sizeof(status->note), "%s", info.note);

    if (check_contract(p, err, errlen) != RF_OK) {
        goto fail;
    }
    /*
     * TorchScript's profiling executor specialises the graph during the
     * first runs; without these the first two requests of every worker
     * take several times longer than the rest.
     */
    for (int i = 0; i < PREDICT_WARMUP_RUNS; i++) {
        float row[PREDICT_MAX_COLS];
        int cols;

        if (model_forward(p->model, p->tensor, 1, p->spec.size, row,
                          PREDICT_MAX_COLS, &cols, err, errlen) != RF_OK) {
            goto fail;
        }
    }
    status->load_ms = (double)elapsed_us(&start) / 1000.0;
    return p;

fail:
    predictor_free(p);
    return NULL;
}

void predictor_free(struct predictor *p)
{
    if (p == NULL) {
        return;
    }
    model_free(p->model);
    sniff_free(p->sniffer);
    free(p->tensor);
    free(p);
}

const struct card *predictor_card(const struct predictor *p)
{
    return &p->card;
}

enum rf_result predictor_run(struct predictor *p, const unsigned char *buf,
                             size_t len, struct prediction *out, char *err,
                             size_t errlen)
{
    struct timespec t;
    struct img im = { 0 };
    struct prep_rect rect;
    float row[PREDICT_MAX_COLS];
    const char *mime;
    int cols = 0;
    enum rf_result r;

    memset(out, 0, sizeof(*out));

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = sniff_detect(p->sniffer, buf, len, &out->format, &mime);
    out->timing.sniff_us = elapsed_us(&t);
    if (r != RF_OK) {
        snprintf(err, errlen, "content is %s", mime);
        return r;
    }

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = img_decode_scaled(buf, len, p->max_pixels,
                          (int)ceil(p->spec.size / p->crop), &im, NULL, err,
                          errlen);
    out->timing.decode_us = elapsed_us(&t);
    if (r != RF_OK) {
        return r;
    }
    out->width = im.width;
    out->height = im.height;

    clock_gettime(CLOCK_MONOTONIC, &t);
    prep_centre_rect(im.width, im.height, p->crop, &rect);
    r = prep_tensor(&im, &rect, &p->spec, p->tensor);
    img_release(&im);
    out->timing.preprocess_us = elapsed_us(&t);
    if (r != RF_OK) {
        snprintf(err, errlen, "preprocessing failed: %s", rf_result_name(r));
        return r;
    }

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = model_forward(p->model, p->tensor, 1, p->spec.size, row,
                      PREDICT_MAX_COLS, &cols, err, errlen);
    out->timing.infer_us = elapsed_us(&t);
    if (r != RF_OK) {
        return RF_ERR_MODEL;
    }
    if (cols != 2 + p->card.n_labels) {
        snprintf(err, errlen, "output has %d columns, expected %d", cols,
                 2 + p->card.n_labels);
        return RF_ERR_MODEL;
    }
    return read_row(&p->card, row, out, err, errlen);
}
