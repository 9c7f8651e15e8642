/*
 * reface-stages: the server's own pipeline (core/predict.c, then the JSON
 * reply of core/reply.c) run in process on each file given, many times,
 * with the time of every stage. No FastCGI, no nginx: the sum of the
 * stages is the most one worker could serve; times the cores, the most the
 * machine could. Prints one JSON object (bench/run.py reads it).
 *
 * --detect 1 (the default, as the API's) finds the faces first with the
 * detector (--detector, default models/detector.pt); --detect 0 is the
 * API's detect=false, the centred crop. Stages: sniff, decode, preprocess
 * (the detector's input and every face crop), detect (the detector's
 * forwards), infer (the attribute model's), reply (the JSON), total.
 *
 * usage: reface-stages [--model PATH] [--detector PATH] [--detect 0|1]
 *                      [--threads N] [--iters N] FILE...
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/predict.h"
#include "core/reply.h"

enum {
    ST_SNIFF, ST_DECODE, ST_PREP, ST_DETECT, ST_INFER, ST_REPLY, ST_TOTAL,
    ST_N
};

static const char *const stage_names[ST_N] = {
    "sniff", "decode", "preprocess", "detect", "infer", "reply", "total",
};

static long now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000L + t.tv_nsec / 1000L;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

/* The median of n values (sorts them). */
static long median(long *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_long);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    unsigned char *buf = NULL;
    long size;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)size;
    }
    fclose(f);
    return buf;
}

/* Runs one file `iters` times after two unmeasured runs; prints its JSON. */
static int bench_file(struct predictor *pred, const char *path,
                      const struct predict_options *opt, int iters,
                      int first)
{
    long *t[ST_N];
    struct predict_result *r = malloc(sizeof(*r));
    char err[512];
    size_t len = 0;
    unsigned char *buf = read_file(path, &len);
    int rc = 1;

    memset(t, 0, sizeof(t));
    if (buf == NULL || r == NULL) {
        fprintf(stderr, "stages: cannot read %s\n", path);
        free(buf);
        free(r);
        return 1;
    }
    for (int s = 0; s < ST_N; s++) {
        t[s] = calloc((size_t)iters, sizeof(long));
        if (t[s] == NULL) {
            goto out;
        }
    }
    for (int i = -2; i < iters; i++) {
        long start = now_us(), mid;
        char *body;

        if (predictor_run(pred, buf, len, opt, r, err, sizeof(err)) !=
            RF_OK) {
            fprintf(stderr, "stages: %s: %s\n", path, err);
            goto out;
        }
        mid = now_us();
        body = reply_result(r, predictor_card(pred));
        if (body == NULL) {
            goto out;
        }
        free(body);
        if (i < 0) {
            continue;
        }
        t[ST_SNIFF][i] = r->timing.sniff_us;
        t[ST_DECODE][i] = r->timing.decode_us;
        t[ST_PREP][i] = r->timing.preprocess_us;
        t[ST_DETECT][i] = r->timing.detect_us;
        t[ST_INFER][i] = r->timing.infer_us - r->timing.detect_us;
        t[ST_REPLY][i] = now_us() - mid;
        t[ST_TOTAL][i] = now_us() - start;
    }
    printf("%s\n    \"%s\": {\"width\": %d, \"height\": %d, \"bytes\": %zu, "
           "\"iters\": %d, \"face_detected\": %d, \"faces\": %d",
           first ? "" : ",", path, r->width, r->height, len, iters,
           r->face_detected, r->n_faces);
    for (int s = 0; s < ST_N; s++) {
        printf(", \"%s_us\": %ld", stage_names[s], median(t[s], iters));
    }
    if (r->n_faces > 0) {
        printf(", \"age\": %.1f, \"p_male\": %.4f", r->faces[0].attr.age,
               r->faces[0].attr.p_male);
    }
    printf("}");
    rc = 0;
out:
    for (int s = 0; s < ST_N; s++) {
        free(t[s]);
    }
    free(buf);
    free(r);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, 'm' },
        { "threads", required_argument, NULL, 't' },
        { "iters", required_argument, NULL, 'n' },
        { "detector", required_argument, NULL, 'd' },
        { "detect", required_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 },
    };
    struct predict_options opt;
    struct config cfg;
    struct predictor_source src;
    struct predictor_status st;
    struct predictor *pred;
    char err[512];
    int iters = 30, c, rc = 0;

    config_defaults(&cfg);
    predict_options_default(&opt);
    rlog_setup("stages", RLOG_WARN);
    while ((c = getopt_long(argc, argv, "m:t:n:", opts, NULL)) != -1) {
        const char *key = c == 'm' ? "model"
                          : c == 'd' ? "detector" : "threads";

        if (c == 'n') {
            iters = atoi(optarg);
            continue;
        }
        if (c == 'D') {
            opt.detect = strcmp(optarg, "0") != 0;
            continue;
        }
        if (c == '?' ||
            config_set(&cfg, key, optarg, err, sizeof(err)) != RF_OK) {
            fprintf(stderr, "usage: reface-stages [--model PATH] "
                    "[--detector PATH] [--detect 0|1] [--threads N] "
                    "[--iters N] FILE...\n");
            return 2;
        }
    }
    if (optind >= argc || iters < 1) {
        fprintf(stderr, "stages: no files, or --iters below 1\n");
        return 2;
    }
    if (predictor_source_read(&cfg, &src, err, sizeof(err)) != RF_OK) {
        fprintf(stderr, "stages: %s\n", err);
        predictor_source_release(&src);
        return 1;
    }
    pred = predictor_new(&cfg, &src, &st, err, sizeof(err));
    predictor_source_release(&src);
    if (pred == NULL) {
        fprintf(stderr, "stages: %s\n", err);
        return 1;
    }
    if (opt.detect && !st.detector) {
        fprintf(stderr, "stages: --detect 1 needs the detector (%s)\n",
                cfg.detector);
        predictor_free(pred);
        return 1;
    }
    printf("{\"model\": \"%s\", \"detector\": \"%s\", \"detect\": %d, "
           "\"threads\": %d, \"load_ms\": %.1f, \"optimized\": %d, "
           "\"files\": {", cfg.model, st.detector ? cfg.detector : "",
           opt.detect, cfg.threads, st.load_ms, st.model_optimized);
    for (int i = optind; i < argc && rc == 0; i++) {
        rc = bench_file(pred, argv[i], &opt, iters, i == optind);
    }
    printf("\n}}\n");
    predictor_free(pred);
    return rc;
}
