/*
 * A stand-in for core/model.cpp in the handler fuzzer: the same C API
 * (core/model.h), no libtorch. Its output row is computed from the input
 * tensor (age and P(male) from the mean, emotions a softmax over channel
 * means), so it obeys the model contract and yet depends on every pixel.
 *
 * Why not the real model: one forward takes about 20 ms, which would hold
 * the fuzzer to some 50 inputs a second, and libtorch is not built with
 * the sanitizer coverage libFuzzer steers by. The model sees a fixed-size
 * float tensor whatever the upload was; the bytes an attacker controls end
 * at core/preprocess, which this harness runs for real.
 *
 * Given a 512 input it plays the face detector instead: a few anchors with
 * scores and boxes computed from the pixels, the rest zero, so that the
 * face selection, crops and batching behind it run on fuzzed images.
 */
#include "core/model.h"

#include "core/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default card's eight labels (card_default). */
#define FAKE_LABELS 8

struct model {
    int loaded;
};

struct model *model_load(const void *bytes, size_t len, int threads,
                         struct model_info *info, char *err, size_t errlen)
{
    struct model *m;

    (void)bytes;
    (void)len;
    (void)threads;
    memset(info, 0, sizeof(*info));
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->loaded = 1;
    return m;
}

void model_free(struct model *m)
{
    free(m);
}

static void fake_row(const float *input, size_t plane, float *out);

/* Detector rows: anchors 0..7 get a score and a box from pixel rows. */
static void fake_detector(const float *input, float *out)
{
    const size_t n = DETECT_ANCHORS * DETECT_ANCHOR_VALUES;

    memset(out, 0, sizeof(float) * n);
    for (int a = 0; a < 8; a++) {
        const float *row = input + (size_t)a * 64 * DETECT_INPUT_SIZE;
        float *o = out + (size_t)a * DETECT_ANCHOR_VALUES;
        float y = row[0] / 255.0f, x = row[1] / 255.0f;
        float h = row[2] / 255.0f, w = row[3] / 255.0f;

        o[0] = row[4] / 255.0f;
        o[1] = y - 0.2f;
        o[2] = x - 0.2f;
        o[3] = y + h;
        o[4] = x + w;
    }
}

enum rf_result model_forward(struct model *m, const float *input, int batch,
                             int size, float *out, size_t out_cap, int *cols,
                             char *err, size_t errlen)
{
    size_t plane = (size_t)size * (size_t)size;

    if (m == NULL || !m->loaded || batch < 1) {
        snprintf(err, errlen, "fake model: bad call");
        return RF_ERR_MODEL;
    }
    if (size == DETECT_INPUT_SIZE) {
        if (batch != 1 ||
            out_cap < (size_t)DETECT_ANCHORS * DETECT_ANCHOR_VALUES) {
            snprintf(err, errlen, "fake detector: bad call");
            return RF_ERR_MODEL;
        }
        fake_detector(input, out);
        *cols = DETECT_ANCHORS * DETECT_ANCHOR_VALUES;
        return RF_OK;
    }
    if (out_cap < (size_t)batch * (2 + FAKE_LABELS)) {
        snprintf(err, errlen, "fake model: bad call");
        return RF_ERR_MODEL;
    }
    for (int b = 0; b < batch; b++) {
        fake_row(input + (size_t)b * 3 * plane, plane,
                 out + (size_t)b * (2 + FAKE_LABELS));
    }
    *cols = 2 + FAKE_LABELS;
    return RF_OK;
}

/* One attribute row from one image's tensor. */
static void fake_row(const float *input, size_t plane, float *out)
{
    double channel[3] = { 0.0, 0.0, 0.0 };
    double logits[FAKE_LABELS], sum = 0.0, mean;

    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < plane; i++) {
            channel[c] += input[c * plane + i];
        }
        channel[c] /= (double)plane;
    }
    mean = (channel[0] + channel[1] + channel[2]) / 3.0;

    out[0] = (float)(30.0 + 20.0 * tanh(mean));
    out[1] = (float)(1.0 / (1.0 + exp(-mean)));
    for (int k = 0; k < FAKE_LABELS; k++) {
        logits[k] = tanh(channel[k % 3] * (k + 1));
        sum += exp(logits[k]);
    }
    for (int k = 0; k < FAKE_LABELS; k++) {
        out[2 + k] = (float)(exp(logits[k]) / sum);
    }
}
