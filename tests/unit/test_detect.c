/*
 * Tests of core/detect against face-api itself: the golden SSD outputs of
 * tests/data/golden/faceapi/ssd go through detect_select and must give the
 * detections face-api's locateFaces gave (tests/unit/detect/<case>.expected,
 * written by make_fixtures.py there); detect_input must give the padded,
 * resized input tfjs built for the 600x200 strip. Plus the suppression
 * rule and the caps on hand-made boxes.
 */
#include "core/detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

#define ANCHORS 5118
/* golden README 7.5: detections with the same options. */
#define TOL_SCORE 1e-4
#define TOL_BOX_PX 1e-2

static const char *dir = "tests/unit/detect";
static const char *golden = "tests/data/golden";

/*
 * Reads a little-endian float32 .npy (format 1.0) of `count` values into a
 * new buffer; NULL if the file is not that.
 */
static float *read_npy(const char *path, size_t count)
{
    size_t len, header;
    unsigned char *raw = check_read_file(path, &len);
    float *out = NULL;

    if (raw == NULL) {
        return NULL;
    }
    if (len < 10 || memcmp(raw, "\x93NUMPY\x01", 7) != 0) {
        goto done;
    }
    header = (size_t)raw[8] | ((size_t)raw[9] << 8);
    if (strstr((const char *)raw + 10, "'<f4'") == NULL ||
        len != 10 + header + count * sizeof(float)) {
        fprintf(stderr, "  %s: not float32 with %zu values\n", path, count);
        goto done;
    }
    out = malloc(count * sizeof(float));
    if (out != NULL) {
        memcpy(out, raw + 10 + header, count * sizeof(float));
    }
done:
    free(raw);
    return out;
}

/* The detector's row for a golden case: score then the decoded box. */
static float *golden_row(const char *name)
{
    char path[512];
    float *scores, *boxes, *row;

    snprintf(path, sizeof(path), "%s/faceapi/ssd/%s.scores.npy", golden, name);
    scores = read_npy(path, ANCHORS);
    snprintf(path, sizeof(path), "%s/faceapi/ssd/%s.boxes.npy", golden, name);
    boxes = read_npy(path, ANCHORS * 4);
    row = malloc(sizeof(float) * ANCHORS * DETECT_ANCHOR_VALUES);
    if (scores == NULL || boxes == NULL || row == NULL) {
        free(scores);
        free(boxes);
        free(row);
        return NULL;
    }
    for (int i = 0; i < ANCHORS; i++) {
        row[i * 5] = scores[i];
        memcpy(row + i * 5 + 1, boxes + i * 4, 4 * sizeof(float));
    }
    free(scores);
    free(boxes);
    return row;
}

static void check_case(const char *name, int width, int height, int n05,
                       int n02)
{
    char path[512];
    float *row = golden_row(name);
    struct detect_box got[DETECT_MAX_FACES];
    struct detect_params params;
    const char *confs[2] = { "0.5", "0.2" };
    int want_n[2] = { n05, n02 };
    FILE *f;

    CHECK(row != NULL);
    if (row == NULL) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        char conf[16];
        double score, x, y, w, h;
        int n, i = 0;

        detect_params_default(&params);
        params.min_score = atof(confs[k]);
        n = detect_select(row, ANCHORS, width, height, &params, got,
                          DETECT_MAX_FACES);
        CHECK_INT_EQ(n, want_n[k]);

        snprintf(path, sizeof(path), "%s/%s.expected", dir, name);
        f = fopen(path, "r");
        CHECK(f != NULL);
        if (f == NULL) {
            break;
        }
        while (fscanf(f, "%15s %lf %lf %lf %lf %lf", conf, &score, &x, &y,
                      &w, &h) == 6) {
            if (strcmp(conf, confs[k]) != 0) {
                continue;
            }
            CHECK(i < n);
            if (i < n) {
                CHECK_NEAR(got[i].score, score, TOL_SCORE);
                CHECK_NEAR(got[i].x, x, TOL_BOX_PX);
                CHECK_NEAR(got[i].y, y, TOL_BOX_PX);
                CHECK_NEAR(got[i].width, w, TOL_BOX_PX);
                CHECK_NEAR(got[i].height, h, TOL_BOX_PX);
            }
            i++;
        }
        fclose(f);
        CHECK_INT_EQ(i, want_n[k]);
    }
    free(row);
}

/* Counts from golden README 4.5. */
static void test_select_mosaic(void) { check_case("mosaic2x2", 512, 512, 5, 5); }
static void test_select_strip(void) { check_case("strip1x3", 600, 200, 3, 3); }
static void test_select_one_face(void) { check_case("ffhq_00064", 256, 256, 1, 1); }
static void test_select_no_face(void) { check_case("ferplus_fer0028735", 48, 48, 0, 0); }

static void set_anchor(float *row, int i, float score, float ymin, float xmin,
                       float ymax, float xmax)
{
    float *a = row + (size_t)i * DETECT_ANCHOR_VALUES;

    a[0] = score;
    a[1] = ymin;
    a[2] = xmin;
    a[3] = ymax;
    a[4] = xmax;
}

static void test_suppression_rule(void)
{
    float row[4 * DETECT_ANCHOR_VALUES] = { 0 };
    struct detect_box out[4];
    struct detect_params p;
    int n;

    detect_params_default(&p);
    /* 0 and 1: IoU 0.6 (drop 1); 0 and 2: IoU 0.25 (keep); 3 under 0.5. */
    set_anchor(row, 0, 0.9f, 0.0f, 0.0f, 0.5f, 0.5f);
    set_anchor(row, 1, 0.8f, 0.0f, 0.0f, 0.5f, 0.3f);
    set_anchor(row, 2, 0.95f, 0.25f, 0.25f, 0.5f, 0.5f);
    set_anchor(row, 3, 0.5f, 0.6f, 0.6f, 0.9f, 0.9f);
    n = detect_select(row, 4, 100, 100, &p, out, 4);
    CHECK_INT_EQ(n, 2);
    CHECK_NEAR(out[0].score, 0.95, 1e-6);
    CHECK_NEAR(out[1].score, 0.9, 1e-6);
    CHECK_NEAR(out[1].width, 50.0, 1e-4);
    CHECK_NEAR(out[0].x, 25.0, 1e-4);

    p.max_faces = 1;
    CHECK_INT_EQ(detect_select(row, 4, 100, 100, &p, out, 4), 1);
    detect_params_default(&p);
    CHECK_INT_EQ(detect_select(row, 4, 100, 100, &p, out, 1), 1);
    p.max_iou = 0.65;
    CHECK_INT_EQ(detect_select(row, 4, 100, 100, &p, out, 4), 3);
}

/* A box reaching into the padding is clipped there, then scaled. */
static void test_unpadding(void)
{
    float row[DETECT_ANCHOR_VALUES];
    struct detect_box out[1];
    struct detect_params p;

    detect_params_default(&p);
    /* 600x200: the image fills rows 0 .. 170.67 of 512 (rh = 171). */
    set_anchor(row, 0, 0.9f, 0.2f, -0.1f, 0.5f, 0.5f);
    CHECK_INT_EQ(detect_select(row, 1, 600, 200, &p, out, 1), 1);
    CHECK_NEAR(out[0].x, 0.0, 1e-9);
    CHECK_NEAR(out[0].width, 300.0, 1e-3);
    CHECK_NEAR(out[0].y, 0.2 * 512.0 / 171.0 * 200.0, 1e-3);
    CHECK_NEAR(out[0].height, 0.3 * 512.0 / 171.0 * 200.0, 1e-3);
}

static struct img load_png(const char *name)
{
    char path[512];
    struct img im = { 0 };
    char err[128];
    size_t len;
    unsigned char *buf;

    snprintf(path, sizeof(path), "%s/images/%s", golden, name);
    buf = check_read_file(path, &len);
    if (buf != NULL) {
        img_decode(buf, len, 1LL << 30, &im, err, sizeof(err));
    }
    free(buf);
    return im;
}

/* tfjs (wasm, float32) built this input: README 7.2 says within 3e-3. */
static void test_input_strip_vs_tfjs(void)
{
    char path[512];
    struct img im = load_png("strip1x3.png");
    float *want, *got = malloc(sizeof(float) * 3 * 416 * 416);
    double worst = 0.0;

    snprintf(path, sizeof(path),
             "%s/faceapi/tiny/strip1x3.input_416.rows100_180.npy", golden);
    want = read_npy(path, 80 * 416 * 3);
    CHECK(im.rgb != NULL && want != NULL && got != NULL);
    if (im.rgb != NULL && want != NULL && got != NULL) {
        CHECK_INT_EQ(detect_input(&im, 416, got), RF_OK);
        for (int y = 0; y < 80; y++) {
            for (int x = 0; x < 416; x++) {
                for (int c = 0; c < 3; c++) {
                    double d = got[(size_t)c * 416 * 416 +
                                   (size_t)(y + 100) * 416 + (size_t)x] -
                               want[((size_t)y * 416 + (size_t)x) * 3 +
                                    (size_t)c];

                    worst = d < 0 ? (-d > worst ? -d : worst)
                                  : (d > worst ? d : worst);
                }
            }
        }
        fprintf(stderr, "  strip input: max |C - tfjs| = %g\n", worst);
        CHECK(worst <= 5e-3);
        /* Everything below the image is black padding. */
        CHECK(got[(size_t)415 * 416 + 7] == 0.0f);
    }
    img_release(&im);
    free(want);
    free(got);
}

/* A 512x512 image is the input as it is (face-api skips the resize). */
static void test_input_square_512_exact(void)
{
    struct img im = load_png("mosaic2x2.png");
    float *got = malloc(sizeof(float) * 3 * 512 * 512);
    int same = 1;

    CHECK(im.rgb != NULL && got != NULL);
    if (im.rgb != NULL && got != NULL) {
        CHECK_INT_EQ(detect_input(&im, 512, got), RF_OK);
        for (size_t i = 0; i < (size_t)512 * 512 && same; i++) {
            for (size_t c = 0; c < 3; c++) {
                same &= got[c * 512 * 512 + i] == (float)im.rgb[i * 3 + c];
            }
        }
        CHECK(same);
    }
    CHECK_INT_EQ(detect_input(&im, 0, got), RF_ERR_CONFIG);
    img_release(&im);
    free(got);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        dir = argv[1];
    }
    RUN(test_select_mosaic);
    RUN(test_select_strip);
    RUN(test_select_one_face);
    RUN(test_select_no_face);
    RUN(test_suppression_rule);
    RUN(test_unpadding);
    RUN(test_input_strip_vs_tfjs);
    RUN(test_input_square_512_exact);
    return check_summary("detect");
}
