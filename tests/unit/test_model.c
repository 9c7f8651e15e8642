/*
 * Tests of core/model and of predictor_new()'s contract checks on real
 * TorchScript files. tests/unit/model/make_models.py writes them to
 * build/test-models; this binary runs it once, through system(), when
 * build/test-models/STAMP is missing or older than the script (so a fresh
 * checkout needs no extra step, and both builds share the files). A
 * generator that fails is a visible failure, not a skip.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/model.h"
#include "core/predict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/unit/check.h"

#define MODELS "build/test-models"
#define GENERATOR "tests/unit/model/make_models.py"
#define PROBE_SIZE 32
#define PROBE_BATCH 2

static char image_dir[512] = "tests/unit/image";

/* Runs the generator unless its stamp is newer than the script. */
static int ensure_models(void)
{
    struct stat script, stamp;
    int rc;

    if (stat(GENERATOR, &script) != 0) {
        fprintf(stderr, "%s missing: run from the repository root\n",
                GENERATOR);
        return -1;
    }
    if (stat(MODELS "/STAMP", &stamp) == 0 &&
        stamp.st_mtime >= script.st_mtime) {
        return 0;
    }
    fprintf(stderr, "generating test models into %s\n", MODELS);
    rc = system("/usr/bin/python3 " GENERATOR " " MODELS);
    if (rc != 0 || stat(MODELS "/STAMP", &stamp) != 0) {
        fprintf(stderr, "%s failed (status %d)\n", GENERATOR, rc);
        return -1;
    }
    return 0;
}

static struct model *load(const char *name, struct model_info *info,
                          char *err, size_t errlen)
{
    char path[256];
    size_t len = 0;
    unsigned char *bytes;
    struct model *m;

    snprintf(path, sizeof(path), "%s/%s", MODELS, name);
    bytes = check_read_file(path, &len);
    if (bytes == NULL) {
        snprintf(err, errlen, "cannot read %s", path);
        return NULL;
    }
    m = model_load(bytes, len, 1, info, err, errlen);
    /* The model keeps its own copy: scribble over ours to prove it. */
    memset(bytes, 0xa5, len);
    free(bytes);
    return m;
}

/* The input make_models.py's probe() builds: ((i % 17) - 8) / 8. */
static float *probe(int batch, int size)
{
    size_t n = (size_t)batch * 3 * (size_t)size * (size_t)size;
    float *x = malloc(sizeof(float) * n);

    for (size_t i = 0; x != NULL && i < n; i++) {
        x[i] = (float)((int)(i % 17) - 8) / 8.0f;
    }
    return x;
}

/* Loads `name`, runs the probe batch and compares with X.expected. */
static void check_forward(const char *name, int want_cols, int want_half,
                          double tol)
{
    char err[512] = "", path[256], stem[64];
    struct model_info info;
    struct model *m = load(name, &info, err, sizeof(err));
    float out[PROBE_BATCH * 16], one[16];
    float *x = probe(PROBE_BATCH, PROBE_SIZE);
    const float *want;
    unsigned char *ref;
    size_t ref_len = 0;
    int cols = -1;
    enum rf_result r;

    CHECK(m != NULL);
    CHECK(x != NULL);
    if (m == NULL || x == NULL) {
        fprintf(stderr, "  %s: %s\n", name, err);
        model_free(m);
        free(x);
        return;
    }
    fprintf(stderr, "  %s: half %d optimized %d%s%s\n", name,
            info.half_weights, info.optimized, info.note[0] ? " note " : "",
            info.note);
    CHECK_INT_EQ(info.half_weights, want_half);

    r = model_forward(m, x, PROBE_BATCH, PROBE_SIZE, out,
                      sizeof(out) / sizeof(out[0]), &cols, err, sizeof(err));
    CHECK_INT_EQ(r, RF_OK);
    CHECK_INT_EQ(cols, want_cols);

    snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(name) - 3), name);
    snprintf(path, sizeof(path), "%s/%s.expected", MODELS, stem);
    ref = check_read_file(path, &ref_len);
    CHECK_INT_EQ(ref_len, sizeof(float) * PROBE_BATCH * (size_t)want_cols);
    if (r == RF_OK && cols == want_cols && ref != NULL &&
        ref_len == sizeof(float) * PROBE_BATCH * (size_t)want_cols) {
        double worst = 0.0;

        want = (const float *)ref;
        for (int i = 0; i < PROBE_BATCH * want_cols; i++) {
            double d = fabs((double)out[i] - (double)want[i]);

            worst = d > worst ? d : worst;
        }
        fprintf(stderr, "  %s: max |C - python| = %g\n", name, worst);
        CHECK(worst <= tol);
        /* Rows differ: the batch was not read as one image twice. */
        CHECK(memcmp(out, out + want_cols, sizeof(float) * want_cols) != 0);
    }

    /* Batch 1 gives the first row again. */
    r = model_forward(m, x, 1, PROBE_SIZE, one, 16, &cols, err, sizeof(err));
    CHECK_INT_EQ(r, RF_OK);
    if (r == RF_OK) {
        for (int i = 0; i < want_cols; i++) {
            CHECK_NEAR(one[i], out[i], 1e-5);
        }
    }

    /* An output larger than the caller's buffer is refused, not copied. */
    r = model_forward(m, x, PROBE_BATCH, PROBE_SIZE, out,
                      (size_t)(PROBE_BATCH * want_cols - 1), &cols, err,
                      sizeof(err));
    CHECK_INT_EQ(r, RF_ERR_CONTRACT);
    CHECK(strstr(err, "too many") != NULL);

    free(ref);
    free(x);
    model_free(m);
}

static void test_tensor_output(void)
{
    check_forward("tensor.pt", 5, 0, 1e-5);
}

static void test_tuple_output(void)
{
    check_forward("tuple.pt", 10, 0, 1e-5);
}

static void test_half_weights(void)
{
    check_forward("half.pt", 5, 1, 1e-4);
}

/* Loads `name` (which must load), runs one image, expects `want` and an
 * error containing `words`. */
static void check_forward_fails(const char *name, enum rf_result want,
                                const char *words)
{
    char err[512] = "";
    struct model_info info;
    struct model *m = load(name, &info, err, sizeof(err));
    float *x = probe(1, PROBE_SIZE);
    float out[16];
    int cols = -1;
    enum rf_result r;

    CHECK(m != NULL);
    if (m == NULL || x == NULL) {
        fprintf(stderr, "  %s: %s\n", name, err);
        model_free(m);
        free(x);
        return;
    }
    r = model_forward(m, x, 1, PROBE_SIZE, out, 16, &cols, err, sizeof(err));
    fprintf(stderr, "  %s: %s \"%s\"\n", name, rf_result_name(r), err);
    CHECK_INT_EQ(r, want);
    CHECK(strstr(err, words) != NULL);
    CHECK(strchr(err, '\n') == NULL);
    free(x);
    model_free(m);
}

static void test_rank1_output(void)
{
    check_forward_fails("rank1.pt", RF_ERR_CONTRACT, "expected [1, C]");
}

static void test_short_tuple_output(void)
{
    check_forward_fails("short_tuple.pt", RF_ERR_CONTRACT,
                        "tuple item 0 is not a tensor of 1 values");
}

static void test_forward_raises(void)
{
    /* libtorch's first line only says the interpreter failed. */
    check_forward_fails("raises.pt", RF_ERR_MODEL, "failed");
}

static void test_wrong_columns_forward(void)
{
    char err[512] = "";
    struct model_info info;
    struct model *m = load("wrong_cols.pt", &info, err, sizeof(err));
    float *x = probe(1, PROBE_SIZE);
    float out[16];
    int cols = -1;

    CHECK(m != NULL && x != NULL);
    if (m != NULL && x != NULL) {
        /* The wrapper knows no card: 3 columns is a valid output to it. */
        CHECK_INT_EQ(model_forward(m, x, 1, PROBE_SIZE, out, 16, &cols, err,
                                   sizeof(err)), RF_OK);
        CHECK_INT_EQ(cols, 3);
    }
    free(x);
    model_free(m);
}

static void test_corrupt_file(void)
{
    char err[512] = "";
    struct model_info info;
    struct model *m = load("corrupt.pt", &info, err, sizeof(err));
    static const char empty[1] = { 0 };

    fprintf(stderr, "  corrupt.pt: \"%s\"\n", err);
    CHECK(m == NULL);
    CHECK(err[0] != '\0');
    CHECK(strchr(err, '\n') == NULL);
    model_free(m);

    err[0] = '\0';
    m = model_load(empty, 0, 1, &info, err, sizeof(err));
    fprintf(stderr, "  empty file: \"%s\"\n", err);
    CHECK(m == NULL);
    CHECK(err[0] != '\0');
    model_free(m);
    model_free(NULL);
}

/*
 * The master's half (predictor_source_read) and the worker's half
 * (predictor_new) on MODELS/name; card_override replaces the card path
 * when not NULL. Returns the predictor, or NULL with the reason in err.
 * `card_found` gets the source's flag; -1 if reading the source failed.
 */
static struct predictor *new_predictor(const char *name,
                                       const char *card_override,
                                       struct predictor_status *st,
                                       int *card_found, char *err,
                                       size_t errlen)
{
    struct predictor_source src;
    struct config cfg;
    struct predictor *p = NULL;
    enum rf_result r;

    config_defaults(&cfg);
    /* These models are tiny stand-ins: no face detector in front. */
    cfg.detector[0] = '\0';
    snprintf(cfg.model, sizeof(cfg.model), "%s/%s", MODELS, name);
    if (card_override != NULL) {
        snprintf(cfg.card, sizeof(cfg.card), "%s", card_override);
    }
    err[0] = '\0';
    *card_found = -1;
    r = predictor_source_read(&cfg, &src, err, errlen);
    if (r == RF_OK) {
        *card_found = src.card_found;
        p = predictor_new(&cfg, &src, st, err, errlen);
    }
    predictor_source_release(&src);
    predictor_source_release(&src);
    return p;
}

static void expect_refused(const char *name, const char *card,
                           const char *words1, const char *words2)
{
    struct predictor_status st;
    char err[512];
    int found;
    struct predictor *p = new_predictor(name, card, &st, &found, err,
                                        sizeof(err));

    fprintf(stderr, "  %s: \"%s\"\n", name, err);
    CHECK(p == NULL);
    CHECK(strstr(err, words1) != NULL);
    CHECK(words2 == NULL || strstr(err, words2) != NULL);
    predictor_free(p);
}

static void test_predictor_refuses(void)
{
    expect_refused("wrong_cols.pt", NULL, "output has 3 columns",
                   "need 5");
    expect_refused("rank1.pt", NULL, "model contract", "expected [1, C]");
    expect_refused("short_tuple.pt", NULL, "model contract",
                   "tuple item 0");
    expect_refused("raises.pt", NULL, "model contract",
                   "forward on [1,3,32,32] failed");
    expect_refused("corrupt.pt", NULL, "", NULL);
    expect_refused("const_pmale.pt", NULL, "model contract", "P(male) 1.5");
    expect_refused("const_sum.pt", NULL, "model contract", "sum to 0.9");
    expect_refused("const_nan.pt", NULL, "model contract", "age nan");
    /* A good model whose card wants 8 labels where it gives 3. */
    expect_refused("tensor.pt", MODELS "/tuple_card.json",
                   "output has 5 columns", "need 10");
}

/* Card problems are found by the master, before any worker exists. */
static void test_source_refuses(void)
{
    struct predictor_source src;
    struct config cfg;
    char err[512];

    config_defaults(&cfg);
    snprintf(cfg.model, sizeof(cfg.model), "%s/bad_card.pt", MODELS);
    CHECK_INT_EQ(predictor_source_read(&cfg, &src, err, sizeof(err)),
                 RF_ERR_CONFIG);
    fprintf(stderr, "  bad_card.json: \"%s\"\n", err);
    CHECK(strstr(err, "input_size") != NULL);
    predictor_source_release(&src);

    /* An explicit card that does not exist is an error, not defaults. */
    snprintf(cfg.model, sizeof(cfg.model), "%s/tensor.pt", MODELS);
    snprintf(cfg.card, sizeof(cfg.card), "%s/missing.json", MODELS);
    CHECK_INT_EQ(predictor_source_read(&cfg, &src, err, sizeof(err)),
                 RF_ERR_CONFIG);
    fprintf(stderr, "  missing card: \"%s\"\n", err);
    CHECK(strstr(err, "missing.json") != NULL);
    predictor_source_release(&src);

    snprintf(cfg.model, sizeof(cfg.model), "%s/no_such.pt", MODELS);
    cfg.card[0] = '\0';
    CHECK_INT_EQ(predictor_source_read(&cfg, &src, err, sizeof(err)),
                 RF_ERR_IO);
    fprintf(stderr, "  missing model: \"%s\"\n", err);
    CHECK(strstr(err, "no_such.pt") != NULL);
    predictor_source_release(&src);
}

static void test_predictor_loads(void)
{
    struct predictor_status st;
    char err[512];
    int found;
    struct predictor *p = new_predictor("tensor.pt", NULL, &st, &found, err,
                                        sizeof(err));
    const struct card *card;

    CHECK(p != NULL);
    if (p == NULL) {
        fprintf(stderr, "  tensor.pt: %s\n", err);
        return;
    }
    card = predictor_card(p);
    CHECK_INT_EQ(found, 1);
    CHECK_INT_EQ(st.model_half, 0);
    CHECK(st.load_ms > 0.0);
    CHECK_STR_EQ(card->name, "tensor");
    CHECK_INT_EQ(card->input_size, 32);
    CHECK_INT_EQ(card->n_labels, 3);
    CHECK_STR_EQ(card->labels[2], "fear");
    fprintf(stderr, "  tensor.pt: loaded in %.1f ms, optimized %d\n",
            st.load_ms, st.model_optimized);
    predictor_free(p);

    /* No card beside tuple.pt: the original defaults, 224 and 8 labels. */
    p = new_predictor("tuple.pt", NULL, &st, &found, err, sizeof(err));
    CHECK(p != NULL);
    if (p != NULL) {
        CHECK_INT_EQ(found, 0);
        CHECK_STR_EQ(predictor_card(p)->name, "tuple.pt");
        CHECK_INT_EQ(predictor_card(p)->input_size, 224);
        CHECK_INT_EQ(predictor_card(p)->n_labels, 8);
    } else {
        fprintf(stderr, "  tuple.pt: %s\n", err);
    }
    predictor_free(p);

    p = new_predictor("half.pt", NULL, &st, &found, err, sizeof(err));
    CHECK(p != NULL);
    CHECK_INT_EQ(st.model_half, 1);
    predictor_free(p);
    predictor_free(NULL);
}

static unsigned char *read_image(const char *name, size_t *len)
{
    char path[700];

    snprintf(path, sizeof(path), "%s/%s", image_dir, name);
    return check_read_file(path, len);
}

/* The whole pipeline on a real image: output read by the card. */
static void test_predictor_run(void)
{
    struct predictor_status st;
    struct predict_options opt;
    struct predict_result res;
    const struct prediction *pred = &res.faces[0].attr;
    char err[512];
    int found;
    struct predictor *p = new_predictor("tensor.pt", NULL, &st, &found, err,
                                        sizeof(err));
    size_t len = 0;
    unsigned char *png = read_image("rgb37x23.png", &len);
    double sum = 0.0;

    CHECK(p != NULL && png != NULL);
    if (p == NULL || png == NULL) {
        predictor_free(p);
        free(png);
        return;
    }
    /* Detection asked for but no detector: the whole image, one face. */
    predict_options_default(&opt);
    CHECK_INT_EQ(predictor_run(p, png, len, &opt, &res, err, sizeof(err)),
                 RF_OK);
    CHECK_INT_EQ(res.format, SNIFF_PNG);
    CHECK_INT_EQ(res.width, 37);
    CHECK_INT_EQ(res.height, 23);
    CHECK_INT_EQ(res.face_detected, 0);
    CHECK_INT_EQ(res.n_faces, 1);
    CHECK_INT_EQ(res.faces[0].width, 37);
    CHECK_INT_EQ(res.faces[0].height, 23);
    CHECK(res.faces[0].score < 0.0);
    /* The model saw the default centred crop, 0.8 of each side. */
    CHECK_INT_EQ(res.faces[0].crop.x, 3);
    CHECK_INT_EQ(res.faces[0].crop.y, 2);
    CHECK_INT_EQ(res.faces[0].crop.width, 30);
    CHECK_INT_EQ(res.faces[0].crop.height, 18);
    CHECK_INT_EQ(pred->n_emotions, 3);
    CHECK(pred->age >= 0.0 && pred->age <= 100.0);
    CHECK(pred->p_male > 0.0 && pred->p_male < 1.0);
    for (int i = 0; i < 3; i++) {
        sum += pred->emotions[i];
    }
    CHECK_NEAR(sum, 1.0, 1e-4);
    CHECK(pred->emotions[pred->ranked[0]] >= pred->emotions[pred->ranked[1]]);
    CHECK(pred->emotions[pred->ranked[1]] >= pred->emotions[pred->ranked[2]]);

    /* Not an image: refused before decoding, format unknown. */
    CHECK_INT_EQ(predictor_run(p, (const unsigned char *)"hello", 5, &opt,
                               &res, err, sizeof(err)), RF_ERR_UNSUPPORTED);
    CHECK_INT_EQ(res.format, SNIFF_NONE);
    /* A PNG cut short: sniffed, then the decoder refuses it. */
    CHECK_INT_EQ(predictor_run(p, png, 60, &opt, &res, err, sizeof(err)),
                 RF_ERR_DECODE);
    CHECK_INT_EQ(res.format, SNIFF_PNG);
    free(png);
    predictor_free(p);
}

/* The predictor clamps age to 0..100 and ranks by the card's labels. */
static void check_const(const char *name, double age, double p_male,
                        const int ranked[3])
{
    struct predictor_status st;
    struct predict_options opt;
    struct predict_result res;
    const struct prediction *pred = &res.faces[0].attr;
    char err[512];
    int found;
    struct predictor *p = new_predictor(name, NULL, &st, &found, err,
                                        sizeof(err));
    size_t len = 0;
    unsigned char *bmp = read_image("rgb13x9.bmp", &len);

    predict_options_default(&opt);
    opt.detect = 0;
    CHECK(p != NULL && bmp != NULL);
    if (p != NULL && bmp != NULL) {
        CHECK_INT_EQ(predictor_run(p, bmp, len, &opt, &res, err,
                                   sizeof(err)), RF_OK);
        CHECK_NEAR(pred->age, age, 0.0);
        CHECK_NEAR(pred->p_male, p_male, 1e-7);
        for (int i = 0; i < 3; i++) {
            CHECK_INT_EQ(pred->ranked[i], ranked[i]);
        }
    } else {
        fprintf(stderr, "  %s: %s\n", name, err);
    }
    free(bmp);
    predictor_free(p);
}

static void test_age_clamped(void)
{
    static const int old_rank[3] = { 2, 1, 0 };
    static const int young_rank[3] = { 0, 1, 2 };

    check_const("const_old.pt", 100.0, 0.25, old_rank);
    check_const("const_young.pt", 0.0, 0.75, young_rank);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        const char *slash = strrchr(argv[1], '/');

        if (slash != NULL) {
            snprintf(image_dir, sizeof(image_dir), "%.*s/image",
                     (int)(slash - argv[1]), argv[1]);
        }
    }
    if (ensure_models() != 0) {
        printf("RESULT model 0 1\n");
        return 1;
    }

    RUN(test_tensor_output);
    RUN(test_tuple_output);
    RUN(test_half_weights);
    RUN(test_rank1_output);
    RUN(test_short_tuple_output);
    RUN(test_forward_raises);
    RUN(test_wrong_columns_forward);
    RUN(test_corrupt_file);
    RUN(test_predictor_refuses);
    RUN(test_source_refuses);
    RUN(test_predictor_loads);
    RUN(test_predictor_run);
    RUN(test_age_clamped);
    return check_summary("model");
}
