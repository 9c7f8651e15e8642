/*
 * Tests of img_decode_scaled() (core/image.c): EXIF orientation on the
 * eight orientations, written by orient/make_fixtures.py and checked there
 * against PIL's exif_transpose, through both decoders (stb at full size,
 * libjpeg-turbo at a reduced one); which scale a min_side picks; scaled
 * pixels against block means of the full decode; every prefix of a JPEG
 * either refused or decoded by stb at full size, never half-decoded.
 */
#include "core/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

#define W 320
#define H 240
/* Flat colours through JPEG at quality 95: a few levels at most. */
#define COLOUR_TOL 12

static const char *dir = "tests/unit/orient";

/* The upright quadrants: top left, top right, bottom left, bottom right. */
static const unsigned char quadrant[4][3] = {
    { 230, 20, 20 }, { 20, 200, 40 }, { 30, 40, 220 }, { 245, 245, 245 },
};

static unsigned char *slurp(const char *name, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return check_read_file(path, len);
}

/* True if the pixel at fractions (fx, fy) of `im` is near `want`. */
static int near_colour(const struct img *im, double fx, double fy,
                       const unsigned char *want)
{
    int x = (int)(fx * im->width), y = (int)(fy * im->height);
    const unsigned char *p = im->rgb + ((size_t)y * im->width + x) * 3;

    for (int c = 0; c < 3; c++) {
        if (abs((int)p[c] - (int)want[c]) > COLOUR_TOL) {
            fprintf(stderr, "  at (%d,%d) channel %d: %d, want %d\n", x, y,
                    c, p[c], want[c]);
            return 0;
        }
    }
    return 1;
}

/* Decodes orient_<o>.jpg with `min_side` and checks it shows upright. */
static void check_orientation(int o, int min_side, int want_scale)
{
    char name[32], err[256] = "";
    struct img im;
    struct img_info info;
    size_t len = 0;
    unsigned char *buf;

    snprintf(name, sizeof(name), "orient_%d.jpg", o);
    buf = slurp(name, &len);
    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    memset(&info, 0, sizeof(info));
    CHECK_INT_EQ(img_decode_scaled(buf, len, 40000000, min_side, &im, &info,
                                   err, sizeof(err)), RF_OK);
    if (im.rgb != NULL) {
        CHECK_INT_EQ(info.orientation, o);
        CHECK_INT_EQ(info.scale, want_scale);
        CHECK_INT_EQ(info.file_width, o >= 5 ? H : W);
        CHECK_INT_EQ(info.file_height, o >= 5 ? W : H);
        CHECK_INT_EQ(im.width, W / want_scale);
        CHECK_INT_EQ(im.height, H / want_scale);
        CHECK(near_colour(&im, 0.25, 0.25, quadrant[0]));
        CHECK(near_colour(&im, 0.75, 0.25, quadrant[1]));
        CHECK(near_colour(&im, 0.25, 0.75, quadrant[2]));
        CHECK(near_colour(&im, 0.75, 0.75, quadrant[3]));
    }
    img_release(&im);
    free(buf);
}

static void test_orientations_stb(void)
{
    for (int o = 1; o <= 8; o++) {
        check_orientation(o, 0, 1);
    }
}

static void test_orientations_scaled(void)
{
    /* 240 / 4 = 60: a quarter of the size keeps 60 lines. */
    for (int o = 1; o <= 8; o++) {
        check_orientation(o, 60, 4);
    }
}

/* The smallest scale that keeps min_side on the shorter side (240). */
static void test_scale_choice(void)
{
    static const struct {
        int min_side;
        int scale;
    } cases[] = {
        { 0, 1 }, { 1, 8 }, { 30, 8 }, { 31, 4 }, { 60, 4 }, { 61, 2 },
        { 120, 2 }, { 121, 1 }, { 240, 1 }, { 1000, 1 },
    };
    size_t len = 0;
    unsigned char *buf = slurp("orient_1.jpg", &len);

    CHECK(buf != NULL);
    for (size_t i = 0; buf != NULL && i < sizeof(cases) / sizeof(cases[0]);
         i++) {
        struct img im;
        struct img_info info = { 0, 0, 0, 0 };
        char err[256] = "";

        CHECK_INT_EQ(img_decode_scaled(buf, len, 40000000, cases[i].min_side,
                                       &im, &info, err, sizeof(err)), RF_OK);
        CHECK_INT_EQ(info.scale, cases[i].scale);
        CHECK_INT_EQ(im.width, W / cases[i].scale);
        img_release(&im);
    }
    free(buf);
}

/* A 1/2 decode is close to the 2x2 means of the full one. */
static void test_scaled_matches_full(void)
{
    struct img full, half;
    char err[256] = "";
    size_t len = 0;
    unsigned char *buf = slurp("orient_1.jpg", &len);
    double sum = 0.0;

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_decode(buf, len, 40000000, &full, err, sizeof(err)),
                 RF_OK);
    CHECK_INT_EQ(img_decode_scaled(buf, len, 40000000, 120, &half, NULL,
                                   err, sizeof(err)), RF_OK);
    if (full.rgb != NULL && half.rgb != NULL && half.width == W / 2 &&
        half.height == H / 2) {
        for (int y = 0; y < H / 2; y++) {
            for (int x = 0; x < W / 2; x++) {
                for (int c = 0; c < 3; c++) {
                    const unsigned char *f = full.rgb + c;
                    int mean = (f[((2 * y) * W + 2 * x) * 3] +
                                f[((2 * y) * W + 2 * x + 1) * 3] +
                                f[((2 * y + 1) * W + 2 * x) * 3] +
                                f[((2 * y + 1) * W + 2 * x + 1) * 3] + 2) / 4;

                    sum += abs(mean - half.rgb[(y * (W / 2) + x) * 3 + c]);
                }
            }
        }
        sum /= (double)(W / 2) * (H / 2) * 3;
        fprintf(stderr, "  mean |1/2 decode - 2x2 mean of full| = %.3f\n",
                sum);
        CHECK(sum < 2.0);
    } else {
        CHECK(0);
    }
    img_release(&full);
    img_release(&half);
    free(buf);
}

/* A PNG goes through stb at full size, as stored. */
static void test_png_unchanged(void)
{
    struct img im;
    struct img_info info = { 0, 0, 0, 0 };
    char err[256] = "";
    size_t len = 0;
    unsigned char *buf = slurp("upright.png", &len);

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_decode_scaled(buf, len, 40000000, 30, &im, &info, err,
                                   sizeof(err)), RF_OK);
    CHECK_INT_EQ(info.scale, 1);
    CHECK_INT_EQ(info.orientation, 1);
    CHECK_INT_EQ(im.width, W);
    CHECK_INT_EQ(im.height, H);
    if (im.rgb != NULL) {
        CHECK(memcmp(im.rgb, quadrant[0], 3) == 0);
        CHECK(memcmp(im.rgb + ((size_t)H * W - 1) * 3, quadrant[3], 3) == 0);
    }
    img_release(&im);
    free(buf);
}

/*
 * Every prefix of a JPEG: refused, or (stb's choice, as img_decode makes
 * it) decoded at full size; libjpeg-turbo never hands back a half image.
 */
static void test_truncated(void)
{
    size_t len = 0;
    unsigned char *buf = slurp("orient_6.jpg", &len);
    int bad = 0, refused = 0;

    CHECK(buf != NULL);
    for (size_t n = 1; buf != NULL && n < len; n++) {
        unsigned char *cut = malloc(n);
        struct img im;
        struct img_info info = { 0, 0, 0, 0 };
        char err[256] = "";
        enum rf_result r;

        if (cut == NULL) {
            break;
        }
        memcpy(cut, buf, n);
        r = img_decode_scaled(cut, n, 40000000, 60, &im, &info, err,
                              sizeof(err));
        if (r == RF_OK) {
            bad += info.scale != 1;
        } else {
            refused++;
            bad += r != RF_ERR_DECODE || im.rgb != NULL;
        }
        img_release(&im);
        free(cut);
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(refused > 0);
    free(buf);
}

/* The cap is on the file's size, not the reduced one. */
static void test_pixel_cap(void)
{
    struct img im;
    char err[256] = "";
    size_t len = 0;
    unsigned char *buf = slurp("orient_1.jpg", &len);

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_decode_scaled(buf, len, W * H - 1, 30, &im, NULL, err,
                                   sizeof(err)), RF_ERR_TOO_MANY_PIXELS);
    CHECK(im.rgb == NULL);
    CHECK_INT_EQ(img_decode_scaled(buf, len, W * H, 30, &im, NULL, err,
                                   sizeof(err)), RF_OK);
    img_release(&im);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        dir = argv[1];
    }
    RUN(test_orientations_stb);
    RUN(test_orientations_scaled);
    RUN(test_scale_choice);
    RUN(test_scaled_matches_full);
    RUN(test_png_unchanged);
    RUN(test_truncated);
    RUN(test_pixel_cap);
    return check_summary("orient");
}
