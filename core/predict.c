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
/* Floats in the detector's input and in its output row. */
#define PREDICT_DET_INPUT (3 * DETECT_INPUT_SIZE * DETECT_INPUT_SIZE)
#define PREDICT_DET_OUTPUT (DETECT_ANCHORS * DETECT_ANCHOR_VALUES)
/* Shorter side a reduced-scale JPEG decode keeps when faces are detected. */
#define PREDICT_DETECT_MIN_SIDE 1024

struct predictor {
    struct sniffer *sniffer;
    struct model *model;
    struct model *detector;      /* NULL: no detection */
    struct card card;
    struct prep_spec spec;
    struct detect_params det;
    long long max_pixels;
    double crop;
    double margin;               /* face_margin */
    int retry;                   /* detect_retry: the framed second look */
    float *tensor;               /* 3 * size * size, reused per request */
    float *det_in;               /* the detector's input, reused */
    float *det_out;              /* its output row, reused */
};

void predict_options_default(struct predict_options *opt)
{
    opt->detect = 1;
    opt->max_faces = 10;
    opt->min_face = 0;
}

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

/* Reads the whole regular file `path` into a new buffer. */
static enum rf_result read_file(const char *what, const char *path,
                                void **out, size_t *out_len, char *err,
                                size_t errlen)
{
    struct stat st;
    size_t got;
    FILE *f;

    *out = NULL;
    *out_len = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s \"%s\": %s", what, path,
                 strerror(errno));
        return RF_ERR_IO;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0) {
        snprintf(err, errlen, "%s \"%s\" is not a non-empty file", what,
                 path);
        fclose(f);
        return RF_ERR_IO;
    }
    *out = malloc((size_t)st.st_size);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory reading \"%s\"", path);
        fclose(f);
        return RF_ERR_NOMEM;
    }
    got = fread(*out, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        snprintf(err, errlen, "short read on \"%s\"", path);
        return RF_ERR_IO;
    }
    *out_len = got;
    return RF_OK;
}

enum rf_result predictor_source_read(const struct config *cfg,
                                     struct predictor_source *src,
                                     char *err, size_t errlen)
{
    char card_path[CONFIG_PATH_MAX + 8];
    struct stat st;
    enum rf_result r;

    memset(src, 0, sizeof(*src));
    r = read_file("model", cfg->model, &src->model, &src->model_len, err,
                  errlen);
    if (r != RF_OK) {
        return r;
    }
    /* The detector is optional: without its file, whole-image answers. */
    if (cfg->detector[0] != '\0' && stat(cfg->detector, &st) == 0) {
        r = read_file("detector", cfg->detector, &src->detector,
                      &src->detector_len, err, errlen);
        if (r != RF_OK) {
            return r;
        }
    }

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
    free(src->detector);
    memset(src, 0, sizeof(*src));
}

/*
 * Loads the detector and checks its contract with one forward on a black
 * image: one output row of DETECT_ANCHORS anchors, scores in 0..1. That
 * forward is also its warm-up, as for the attribute model.
 */
static enum rf_result load_detector(struct predictor *p,
                                    const struct predictor_source *src,
                                    int threads, int *optimized, char *err,
                                    size_t errlen)
{
    struct model_info info;
    char detail[256];
    int cols = 0;

    p->det_in = calloc(PREDICT_DET_INPUT, sizeof(float));
    p->det_out = malloc(sizeof(float) * PREDICT_DET_OUTPUT);
    if (p->det_in == NULL || p->det_out == NULL) {
        snprintf(err, errlen, "out of memory");
        return RF_ERR_NOMEM;
    }
    p->detector = model_load(src->detector, src->detector_len, threads,
                             &info, detail, sizeof(detail));
    if (p->detector == NULL) {
        snprintf(err, errlen, "detector: %s", detail);
        return RF_ERR_MODEL;
    }
    *optimized = info.optimized;
    if (model_forward(p->detector, p->det_in, 1, DETECT_INPUT_SIZE,
                      p->det_out, PREDICT_DET_OUTPUT, &cols, detail,
                      sizeof(detail)) != RF_OK) {
        snprintf(err, errlen, "detector contract: forward on [1,3,%d,%d] "
                 "failed: %s", DETECT_INPUT_SIZE, DETECT_INPUT_SIZE, detail);
        return RF_ERR_CONTRACT;
    }
    if (cols != PREDICT_DET_OUTPUT) {
        snprintf(err, errlen, "detector contract: output has %d columns, "
                 "expected %d (%d anchors of %d values)", cols,
                 PREDICT_DET_OUTPUT, DETECT_ANCHORS, DETECT_ANCHOR_VALUES);
        return RF_ERR_CONTRACT;
    }
    for (int i = 0; i < DETECT_ANCHORS; i++) {
        float s = p->det_out[i * DETECT_ANCHOR_VALUES];

        if (!(s >= 0.0f && s <= 1.0f)) {
            snprintf(err, errlen, "detector contract: anchor %d has score "
                     "%g, expected 0..1", i, (double)s);
            return RF_ERR_CONTRACT;
        }
    }
    return RF_OK;
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
    p->margin = cfg->face_margin;
    p->retry = cfg->detect_retry;
    p->card = src->card;
    detect_params_default(&p->det);
    p->det.min_score = cfg->detect_score;

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
     * The contract check was the model's first forward, the one that pays
     * for oneDNN's set-up (3 to 4 times a normal one); with the plain
     * executor (core/model.cpp) the second is already at full speed, so
     * no more warm-up runs are needed before the first request.
     */
    if (src->detector != NULL) {
        if (load_detector(p, src, cfg->threads, &status->detector_optimized,
                          err, errlen) != RF_OK) {
            goto fail;
        }
        status->detector = 1;
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
    model_free(p->detector);
    sniff_free(p->sniffer);
    free(p->tensor);
    free(p->det_in);
    free(p->det_out);
    free(p);
}

const struct card *predictor_card(const struct predictor *p)
{
    return &p->card;
}

enum rf_result predictor_decode(struct predictor *p, const unsigned char *buf,
                                size_t len, int detect,
                                struct predict_result *out, struct img *im,
                                char *err, size_t errlen)
{
    struct timespec t;
    const char *mime;
    int min_side;
    enum rf_result r;

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = sniff_detect(p->sniffer, buf, len, &out->format, &mime);
    out->timing.sniff_us = elapsed_us(&t);
    if (r != RF_OK) {
        snprintf(err, errlen, "content is %s", mime);
        return r;
    }

    clock_gettime(CLOCK_MONOTONIC, &t);
    /*
     * Large JPEGs are decoded at a reduced scale that keeps what the model
     * needs: the centred crop at full model size, or when the detector
     * will look, a shorter side of 1024, so that a face of a quarter of it
     * still fills the attribute net's input. A 12 MP photo decodes at 1/8
     * for the first, at 1/2 (four times the pixels) for the second.
     */
    min_side = detect && p->detector != NULL
                   ? PREDICT_DETECT_MIN_SIDE
                   : (int)ceil(p->spec.size / p->crop);
    r = img_decode_scaled(buf, len, p->max_pixels, min_side, im, NULL, err,
                          errlen);
    out->timing.decode_us = elapsed_us(&t);
    return r;
}

/* A detected face before sorting: its rounded box and its exact one. */
struct predict_candidate {
    struct predict_face face;
    struct detect_box box;
};

/* Larger area first; equal areas: higher score first, then left to right. */
static int by_area_desc(const void *a, const void *b)
{
    const struct predict_candidate *ca = a, *cb = b;
    const struct predict_face *fa = &ca->face, *fb = &cb->face;
    long long aa = (long long)fa->width * fa->height;
    long long ab = (long long)fb->width * fb->height;

    if (aa != ab) {
        return aa < ab ? 1 : -1;
    }
    if (fa->score != fb->score) {
        return fa->score < fb->score ? 1 : -1;
    }
    return fa->x - fb->x;
}

/* Rounds [lo, hi) to whole pixels inside 0..limit; the length may be 0. */
static void round_span(double lo, double hi, int limit, int *start, int *len)
{
    long a = lround(fmax(lo, 0.0));
    long b = lround(fmin(hi, (double)limit));

    a = a > limit ? limit : a;
    *start = (int)a;
    *len = b > a ? (int)(b - a) : 0;
}

/*
 * The crop a face gets: its box grown by the margin on each side, clipped
 * to the image and floored, as face-api cut its faces (extractFaces: clip
 * at the borders, then floor x, y, width and height). prep_tensor then pads
 * it to a square, never stretching it.
 */
static void face_crop(const struct detect_box *b, double margin, int width,
                      int height, struct prep_rect *rect)
{
    double mx = margin * b->width, my = margin * b->height;
    double x0 = fmax(b->x - mx, 0.0), y0 = fmax(b->y - my, 0.0);
    double x1 = fmin(b->x + b->width + mx, (double)width);
    double y1 = fmin(b->y + b->height + my, (double)height);

    rect->x = (int)floor(x0);
    rect->y = (int)floor(y0);
    rect->width = (int)floor(x1 - x0);
    rect->height = (int)floor(y1 - y0);
    /* Keep at least one pixel, inside the image. */
    rect->x = rect->x >= width ? width - 1 : rect->x;
    rect->y = rect->y >= height ? height - 1 : rect->y;
    rect->width = rect->width < 1 ? 1 : rect->width;
    rect->height = rect->height < 1 ? 1 : rect->height;
    if (rect->x + rect->width > width) {
        rect->width = width - rect->x;
    }
    if (rect->y + rect->height > height) {
        rect->height = height - rect->y;
    }
}

/*
 * The second look when the first found nothing: the detector misses a
 * face that fills the whole frame (a tight crop, a close selfie), because
 * its anchors were trained on faces with surroundings. So the image, padded
 * to a square as usual, is shrunk to half the input side and put in the
 * middle of a black input, and the boxes found are mapped back. Returns
 * the number of boxes written to `boxes`, -1 when memory runs out, -2 when
 * the detector fails (reason in `err`).
 */
/*
 * One forward of the detector on p->det_in into p->det_out, checking its
 * width; `us` gets the time it took. RF_OK or RF_ERR_MODEL with `err` set.
 */
static enum rf_result detector_forward(struct predictor *p, long *us,
                                       char *err, size_t errlen)
{
    struct timespec t;
    enum rf_result r;
    int cols = 0;

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = model_forward(p->detector, p->det_in, 1, DETECT_INPUT_SIZE,
                      p->det_out, PREDICT_DET_OUTPUT, &cols, err, errlen);
    *us = elapsed_us(&t);
    if (r != RF_OK) {
        return RF_ERR_MODEL;
    }
    if (cols != PREDICT_DET_OUTPUT) {
        snprintf(err, errlen, "detector output has %d columns, expected %d",
                 cols, PREDICT_DET_OUTPUT);
        return RF_ERR_MODEL;
    }
    return RF_OK;
}

static int find_framed_faces(struct predictor *p, const struct img *im,
                             struct detect_box *boxes,
                             struct predict_result *out, char *err,
                             size_t errlen)
{
    const int half = DETECT_INPUT_SIZE / 2, at = DETECT_INPUT_SIZE / 4;
    const size_t plane = (size_t)DETECT_INPUT_SIZE * DETECT_INPUT_SIZE;
    const size_t small = (size_t)half * (size_t)half;
    double side = im->width > im->height ? im->width : im->height;
    struct timespec t;
    float *tmp = malloc(sizeof(float) * 3 * small);
    enum rf_result r;
    int n;
    long us;

    if (tmp == NULL) {
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    detect_input(im, half, tmp);
    memset(p->det_in, 0, sizeof(float) * PREDICT_DET_INPUT);
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < half; y++) {
            memcpy(p->det_in + (size_t)c * plane +
                       (size_t)(y + at) * DETECT_INPUT_SIZE + (size_t)at,
                   tmp + (size_t)c * small + (size_t)y * (size_t)half,
                   sizeof(float) * (size_t)half);
        }
    }
    free(tmp);
    out->timing.preprocess_us += elapsed_us(&t);

    r = detector_forward(p, &us, err, errlen);
    out->timing.detect_us += us;
    out->timing.infer_us += us;
    if (r != RF_OK) {
        return -2;
    }

    /* In pixels of the 512 square, then of the image's own square. */
    n = detect_select(p->det_out, DETECT_ANCHORS, DETECT_INPUT_SIZE,
                      DETECT_INPUT_SIZE, &p->det, boxes, DETECT_MAX_FACES);
    for (int i = 0; i < n; i++) {
        double scale = side / half;

        boxes[i].x = (boxes[i].x - at) * scale;
        boxes[i].y = (boxes[i].y - at) * scale;
        boxes[i].width *= scale;
        boxes[i].height *= scale;
    }
    return n;
}

/*
 * Runs the detector on `im` and fills out->faces with the boxes that pass
 * min_face, largest first, at most opt->max_faces; `rects` gets each one's
 * crop. Returns RF_OK (n_faces may be 0) or RF_ERR_MODEL / RF_ERR_NOMEM.
 */
static enum rf_result find_faces(struct predictor *p, const struct img *im,
                                 const struct predict_options *opt,
                                 struct predict_result *out,
                                 struct prep_rect *rects, char *err,
                                 size_t errlen)
{
    struct detect_box boxes[DETECT_MAX_FACES];
    struct predict_candidate cand[DETECT_MAX_FACES];
    struct timespec t;
    enum rf_result r;
    int n, k = 0;

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = detect_input(im, DETECT_INPUT_SIZE, p->det_in);
    out->timing.preprocess_us += elapsed_us(&t);
    if (r != RF_OK) {
        snprintf(err, errlen, "detector input: %s", rf_result_name(r));
        return r;
    }

    r = detector_forward(p, &out->timing.detect_us, err, errlen);
    out->timing.infer_us += out->timing.detect_us;
    if (r != RF_OK) {
        return r;
    }

    n = detect_select(p->det_out, DETECT_ANCHORS, im->width, im->height,
                      &p->det, boxes, DETECT_MAX_FACES);
    if (n == 0 && p->retry) {
        n = find_framed_faces(p, im, boxes, out, err, errlen);
        if (n == -2) {
            return RF_ERR_MODEL;
        }
    }
    if (n < 0) {
        snprintf(err, errlen, "out of memory in face selection");
        return RF_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        struct predict_face *f = &cand[k].face;

        memset(f, 0, sizeof(*f));
        round_span(boxes[i].x, boxes[i].x + boxes[i].width, im->width,
                   &f->x, &f->width);
        round_span(boxes[i].y, boxes[i].y + boxes[i].height, im->height,
                   &f->y, &f->height);
        if (f->width < 1 || f->height < 1 || f->width < opt->min_face ||
            f->height < opt->min_face) {
            continue;
        }
        f->score = boxes[i].score;
        cand[k++].box = boxes[i];
    }
    qsort(cand, (size_t)k, sizeof(cand[0]), by_area_desc);
    out->n_faces = k < opt->max_faces ? k : opt->max_faces;
    for (int i = 0; i < out->n_faces; i++) {
        out->faces[i] = cand[i].face;
        face_crop(&cand[i].box, p->margin, im->width, im->height, &rects[i]);
        out->faces[i].crop = rects[i];
    }
    return RF_OK;
}

/* Preprocesses every rect into one batch and reads one row per face. */
static enum rf_result predict_faces(struct predictor *p, const struct img *im,
                                    const struct prep_rect *rects,
                                    struct predict_result *out, char *err,
                                    size_t errlen)
{
    size_t one = 3 * (size_t)p->spec.size * (size_t)p->spec.size;
    size_t ncols = 2 + (size_t)p->card.n_labels;
    int n = out->n_faces, cols = 0;
    float *batch = p->tensor, *rows;
    struct timespec t;
    enum rf_result r = RF_OK;

    rows = malloc(sizeof(float) * (size_t)n * PREDICT_MAX_COLS);
    if (n > 1) {
        batch = malloc(sizeof(float) * one * (size_t)n);
    }
    if (rows == NULL || batch == NULL) {
        snprintf(err, errlen, "out of memory for %d faces", n);
        r = RF_ERR_NOMEM;
        goto done;
    }

    clock_gettime(CLOCK_MONOTONIC, &t);
    for (int i = 0; i < n && r == RF_OK; i++) {
        r = prep_tensor(im, &rects[i], &p->spec, batch + one * (size_t)i);
    }
    out->timing.preprocess_us += elapsed_us(&t);
    if (r != RF_OK) {
        snprintf(err, errlen, "preprocessing failed: %s", rf_result_name(r));
        goto done;
    }

    clock_gettime(CLOCK_MONOTONIC, &t);
    r = model_forward(p->model, batch, n, p->spec.size, rows,
                      (size_t)n * PREDICT_MAX_COLS, &cols, err, errlen);
    out->timing.infer_us += elapsed_us(&t);
    if (r != RF_OK) {
        r = RF_ERR_MODEL;
        goto done;
    }
    if ((size_t)cols != ncols) {
        snprintf(err, errlen, "output has %d columns, expected %zu", cols,
                 ncols);
        r = RF_ERR_MODEL;
        goto done;
    }
    for (int i = 0; i < n && r == RF_OK; i++) {
        r = read_row(&p->card, rows + ncols * (size_t)i, &out->faces[i].attr,
                     err, errlen);
    }

done:
    if (batch != p->tensor) {
        free(batch);
    }
    free(rows);
    return r;
}

enum rf_result predictor_run_image(struct predictor *p, const struct img *im,
                                   const struct predict_options *opt,
                                   struct predict_result *out, char *err,
                                   size_t errlen)
{
    struct prep_rect rects[PREDICT_MAX_FACES];
    enum rf_result r;

    out->width = im->width;
    out->height = im->height;
    out->n_faces = 0;
    out->face_detected = opt->detect && p->detector != NULL;

    if (out->face_detected) {
        r = find_faces(p, im, opt, out, rects, err, errlen);
        if (r != RF_OK || out->n_faces == 0) {
            return r;
        }
    } else {
        /* The original's behaviour: the whole image is the face. */
        struct predict_face *f = &out->faces[0];

        memset(f, 0, sizeof(*f));
        f->width = im->width;
        f->height = im->height;
        f->score = -1.0;
        prep_centre_rect(im->width, im->height, p->crop, &rects[0]);
        f->crop = rects[0];
        out->n_faces = 1;
    }
    return predict_faces(p, im, rects, out, err, errlen);
}

enum rf_result predictor_run(struct predictor *p, const unsigned char *buf,
                             size_t len, const struct predict_options *opt,
                             struct predict_result *out, char *err,
                             size_t errlen)
{
    struct img im = { 0 };
    enum rf_result r;

    memset(out, 0, sizeof(*out));
    r = predictor_decode(p, buf, len, opt->detect, out, &im, err, errlen);
    if (r == RF_OK) {
        r = predictor_run_image(p, &im, opt, out, err, errlen);
    }
    img_release(&im);
    return r;
}
