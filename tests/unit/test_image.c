/*
 * Tests of core/image and core/preprocess against an independent
 * reference: PIL's decode and scripts/preprocess.py, written to
 * tests/unit/image/ by make_fixtures.py there. Also the pixel cap on a
 * hand-made PNG header, truncated files, prep_centre_rect, and where the
 * padding of an odd difference goes.
 */
#define _GNU_SOURCE /* mallinfo2 */

#include "core/image.h"
#include "core/preprocess.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/check.h"

/* PIL (libjpeg) and stb_image use different IDCTs: a few grey levels. */
#define JPEG_MAX_DIFF 4

static const char *dir = "tests/unit/image";

static const struct prep_spec imagenet = {
    224, { 0.485f, 0.456f, 0.406f }, { 0.229f, 0.224f, 0.225f }
};

/* Reads a whole fixture into a heap buffer of exactly its size (so ASan
 * catches a read past the end). */
static unsigned char *slurp(const char *name, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return check_read_file(path, len);
}

static int decode_fixture(const char *name, struct img *im)
{
    char err[256] = "";
    size_t len = 0;
    unsigned char *buf = slurp(name, &len);
    enum rf_result r;

    if (buf == NULL) {
        CHECK(buf != NULL);
        return -1;
    }
    r = img_decode(buf, len, 40000000, im, err, sizeof(err));
    free(buf);
    CHECK_INT_EQ(r, RF_OK);
    if (r != RF_OK) {
        fprintf(stderr, "  %s: %s\n", name, err);
        return -1;
    }
    return 0;
}

/* Largest absolute difference between stb's pixels and PIL's, or -1. */
static int compare_rgb(const char *name, int w, int h)
{
    char ref_name[256];
    struct img im = { 0 };
    size_t ref_len = 0;
    unsigned char *ref;
    int worst = -1;

    if (decode_fixture(name, &im) != 0) {
        return -1;
    }
    CHECK_INT_EQ(im.width, w);
    CHECK_INT_EQ(im.height, h);
    snprintf(ref_name, sizeof(ref_name), "%s.rgb", name);
    ref = slurp(ref_name, &ref_len);
    CHECK(ref != NULL);
    CHECK_INT_EQ(ref_len, (size_t)3 * (size_t)w * (size_t)h);
    if (ref != NULL && im.width == w && im.height == h &&
        ref_len == (size_t)3 * (size_t)w * (size_t)h) {
        worst = 0;
        for (size_t i = 0; i < ref_len; i++) {
            int d = abs((int)im.rgb[i] - (int)ref[i]);

            worst = d > worst ? d : worst;
        }
    }
    free(ref);
    img_release(&im);
    return worst;
}

static void test_decode_png_rgb(void)
{
    CHECK_INT_EQ(compare_rgb("rgb37x23.png", 37, 23), 0);
}

static void test_decode_png_grey(void)
{
    CHECK_INT_EQ(compare_rgb("grey20x31.png", 20, 31), 0);
}

static void test_decode_bmp(void)
{
    CHECK_INT_EQ(compare_rgb("rgb13x9.bmp", 13, 9), 0);
}

static void test_decode_gif(void)
{
    CHECK_INT_EQ(compare_rgb("pal24x17.gif", 24, 17), 0);
}

static void test_decode_jpeg(void)
{
    int worst = compare_rgb("photo40x30.jpg", 40, 30);

    fprintf(stderr, "  jpeg: max |stb - PIL| = %d (allowed %d)\n", worst,
            JPEG_MAX_DIFF);
    CHECK(worst >= 0);
    CHECK(worst <= JPEG_MAX_DIFF);
}

static void test_probe(void)
{
    static const unsigned char junk[] = "not an image at all";
    size_t len = 0;
    unsigned char *buf = slurp("rgb37x23.png", &len);
    int w = 0, h = 0;

    CHECK(buf != NULL);
    if (buf != NULL) {
        CHECK_INT_EQ(img_probe(buf, len, &w, &h), RF_OK);
        CHECK_INT_EQ(w, 37);
        CHECK_INT_EQ(h, 23);
        CHECK_INT_EQ(img_probe(buf, 0, &w, &h), RF_ERR_DECODE);
    }
    CHECK_INT_EQ(img_probe(junk, sizeof(junk), &w, &h), RF_ERR_DECODE);
    free(buf);
}

/* CRC-32 of PNG chunks (ISO 3309), bit by bit: small and obviously right. */
static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
    }
    return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Signature, an IHDR claiming w x h RGB, and IEND: 45 bytes, no pixels. */
static size_t png_header(unsigned char *out, uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
                                          0x1a, '\n' };
    unsigned char *c = out + 8;

    memcpy(out, sig, 8);
    put32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    put32(c + 8, w);
    put32(c + 12, h);
    c[16] = 8;  /* bit depth */
    c[17] = 2;  /* colour type RGB */
    c[18] = 0;
    c[19] = 0;
    c[20] = 0;
    put32(c + 21, crc32_png(c + 4, 17));
    c += 25;
    put32(c, 0);
    memcpy(c + 4, "IEND", 4);
    put32(c + 8, crc32_png(c + 4, 4));
    return 8 + 25 + 12;
}

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void check_capped(uint32_t w, uint32_t h, long long cap)
{
    unsigned char png[64];
    size_t n = png_header(png, w, h);
    unsigned char *heap = malloc(n);
    struct img im = { 0 };
    char err[256] = "";
    struct mallinfo2 before = mallinfo2(), after;
    double t0 = now_ms(), ms;
    enum rf_result r;

    CHECK(heap != NULL);
    if (heap == NULL) {
        return;
    }
    memcpy(heap, png, n);
    r = img_decode(heap, n, cap, &im, err, sizeof(err));
    ms = now_ms() - t0;
    after = mallinfo2();
    fprintf(stderr, "  %ux%u cap %lld: %s \"%s\" in %.3f ms\n", w, h, cap,
            rf_result_name(r), err, ms);
    CHECK_INT_EQ(r, RF_ERR_TOO_MANY_PIXELS);
    CHECK(im.rgb == NULL);
    CHECK(ms < 50.0);
    /* No pixel buffer was made: the heap did not grow by even 1 MB. (Under
     * ASan mallinfo2 reports nothing and this holds trivially.) */
    CHECK(after.uordblks + after.hblkhd <
          before.uordblks + before.hblkhd + (1u << 20));
    img_release(&im);
    free(heap);
}

/* Our CRC and layout agree with a header made by Python's zlib and
 * read back by PIL as 10000 x 10000. */
static void test_png_header_bytes(void)
{
    static const unsigned char want[45] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00,
        0x27, 0x10, 0x08, 0x02, 0x00, 0x00, 0x00, 0x35, 0x2c, 0xf5, 0x70,
        0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
        0x82,
    };
    unsigned char png[64];
    int w = 0, h = 0;

    CHECK_INT_EQ(png_header(png, 10000, 10000), sizeof(want));
    CHECK(memcmp(png, want, sizeof(want)) == 0);
    CHECK_INT_EQ(img_probe(png, sizeof(want), &w, &h), RF_OK);
    CHECK_INT_EQ(w, 10000);
    CHECK_INT_EQ(h, 10000);
}

/* 10^8 pixels: within every limit of stb's, over our default cap. */
static void test_pixel_cap_10000(void)
{
    check_capped(10000, 10000, 40000000);
}

/*
 * 9 * 10^8 and 10^10 pixels: our cap must refuse them with its own code
 * (413 to the client), not stb's header check with a decode error (400).
 * stb refuses a header over 2^30 bytes of pixels ("too large") and sides
 * over STBI_MAX_DIMENSIONS (32768 in core/image.c) before we see the size.
 */
static void test_pixel_cap_30000(void)
{
    check_capped(30000, 30000, 40000000);
}

static void test_pixel_cap_100000(void)
{
    check_capped(100000, 100000, 40000000);
}

/* Headers of the other formats claiming sides stb refuses or our cap
 * refuses: each must be RF_ERR_TOO_MANY_PIXELS, never a decode error. */
static void check_header_capped(const char *what, const unsigned char *hdr,
                                size_t n)
{
    unsigned char *heap = malloc(n);
    struct img im = { 0 };
    char err[256] = "";
    enum rf_result r;

    CHECK(heap != NULL);
    if (heap == NULL) {
        return;
    }
    memcpy(heap, hdr, n);
    r = img_decode(heap, n, 40000000, &im, err, sizeof(err));
    fprintf(stderr, "  %s: %s \"%s\"\n", what, rf_result_name(r), err);
    CHECK_INT_EQ(r, RF_ERR_TOO_MANY_PIXELS);
    CHECK(im.rgb == NULL);
    img_release(&im);
    free(heap);
}

static void test_pixel_cap_other_formats(void)
{
    /* SOI, then SOF0 for 60000 x 60000, 3 components. */
    static const unsigned char jpeg[] = {
        0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0xea, 0x60, 0xea, 0x60,
        0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
        0xff, 0xd9,
    };
    /* GIF89a, logical screen 65535 x 65535, no colour table. */
    static const unsigned char gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
        0x00, ';',
    };
    /* BITMAPFILEHEADER + BITMAPINFOHEADER for 100000 x 100000, 24 bits. */
    unsigned char bmp[54] = { 'B', 'M' };

    bmp[10] = 54;        /* pixel data offset */
    bmp[14] = 40;        /* info header size */
    bmp[18] = 0xa0;      /* width 100000 = 0x000186a0, little-endian */
    bmp[19] = 0x86;
    bmp[20] = 0x01;
    bmp[22] = 0xa0;      /* height */
    bmp[23] = 0x86;
    bmp[24] = 0x01;
    bmp[26] = 1;         /* planes */
    bmp[28] = 24;        /* bits per pixel */

    check_header_capped("jpeg 60000x60000", jpeg, sizeof(jpeg));
    check_header_capped("gif 65535x65535", gif, sizeof(gif));
    check_header_capped("bmp 100000x100000", bmp, sizeof(bmp));
}

/* The cap is inclusive: exactly width * height pixels pass. */
static void test_pixel_cap_boundary(void)
{
    size_t len = 0;
    unsigned char *buf = slurp("rgb37x23.png", &len);
    struct img im = { 0 };
    char err[256];

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_decode(buf, len, 37 * 23, &im, err, sizeof(err)),
                 RF_OK);
    img_release(&im);
    CHECK_INT_EQ(img_decode(buf, len, 37 * 23 - 1, &im, err, sizeof(err)),
                 RF_ERR_TOO_MANY_PIXELS);
    CHECK(im.rgb == NULL);
    img_release(&im);
    img_release(&im);
    img_release(NULL);
    free(buf);
}

/* Every prefix of a file decodes to an error or to an image of the right
 * size; ASan watches each exact-size copy for reads past its end. */
static void check_prefixes(const char *name, int w, int h)
{
    size_t len = 0;
    unsigned char *full = slurp(name, &len);
    int ok = 0, decode = 0, other = 0;

    CHECK(full != NULL);
    if (full == NULL) {
        return;
    }
    for (size_t n = 0; n < len; n++) {
        unsigned char *cut = malloc(n > 0 ? n : 1);
        struct img im = { 0 };
        char err[256];
        enum rf_result r;

        if (cut == NULL) {
            other++;
            break;
        }
        memcpy(cut, full, n);
        r = img_decode(cut, n, 40000000, &im, err, sizeof(err));
        if (r == RF_OK) {
            ok++;
            if (im.width != w || im.height != h || im.rgb == NULL) {
                other++;
            }
        } else if (r == RF_ERR_DECODE) {
            decode++;
            if (im.rgb != NULL) {
                other++;
            }
        } else {
            other++;
        }
        img_release(&im);
        free(cut);
    }
    fprintf(stderr, "  %s: %zu prefixes, %d decoded, %d refused\n", name,
            len, ok, decode);
    CHECK_INT_EQ(other, 0);
    CHECK(decode > 0);
    free(full);
}

static void test_truncated_png(void)
{
    check_prefixes("rgb37x23.png", 37, 23);
}

static void test_truncated_jpeg(void)
{
    check_prefixes("photo40x30.jpg", 40, 30);
}

static void test_truncated_bmp_gif(void)
{
    check_prefixes("rgb13x9.bmp", 13, 9);
    check_prefixes("pal24x17.gif", 24, 17);
}

/*
 * Regression of fuzz_image's first finding (tests/fuzz/regressions): a
 * JPEG whose DHT code counts sum past 256 made stb's Huffman builder write
 * past its size[257] array (UBSan: index 257 out of bounds). The fuzzer's
 * file, and the real photo with its first table's counts raised to 17
 * each; both must be refused as undecodable without stb reading them.
 */
/*
 * Regression of fuzz_image's second finding: a JPEG whose scan uses a
 * Huffman table the file never defined. stb decoded it with whatever its
 * (uninitialised) allocation held: UBSan saw an index of -1903259256 into
 * a 257-entry table, valgrind the uninitialised reads. core/image.c now
 * has stb allocate zeroed memory, and the file is refused as corrupt. The
 * ASan/UBSan run of this test (tests/run.sh) fills every allocation with
 * 0xFF, so without the fix it stops here on every run, not only when the
 * heap happens to hold the wrong bytes.
 */
static void test_jpeg_undefined_huffman_table(void)
{
    struct img im;
    struct img_info info;
    char err[256] = "";
    size_t len;
    unsigned char *buf = slurp("undefined_huffman_table.jpg", &len);

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_decode(buf, len, 1000000, &im, err, sizeof(err)),
                 RF_ERR_DECODE);
    CHECK(im.rgb == NULL && err[0] != '\0');
    /* The serving decoder: libjpeg-turbo refuses it, then stb does. */
    err[0] = '\0';
    CHECK_INT_EQ(img_decode_scaled(buf, len, 1000000, 8, &im, &info, err,
                                   sizeof(err)), RF_ERR_DECODE);
    CHECK(im.rgb == NULL && err[0] != '\0');
    free(buf);
}

/*
 * Regressions of fuzz_image's third and fourth findings, both PNGs that
 * stb mishandled before failing: an empty first IDAT chunk made it compute
 * a null pointer plus 0 (UBSan: "applying zero offset to null pointer");
 * 655 bytes whose chunk claims about 1 GB made it grow its IDAT buffer to
 * 2 GB before finding the data missing (libFuzzer: out of memory). Both
 * are refused as undecodable before stb reads them, by the probe and so by
 * both decoders.
 */
static void test_png_bad_chunks(void)
{
    static const char *const files[] = {
        "empty_first_idat.png", "png_chunk_past_end.png",
    };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct img im;
        struct img_info info;
        char err[256] = "";
        size_t len;
        int w, h;
        unsigned char *buf = slurp(files[i], &len);

        CHECK(buf != NULL);
        if (buf == NULL) {
            continue;
        }
        CHECK_INT_EQ(img_probe(buf, len, &w, &h), RF_ERR_DECODE);
        CHECK_INT_EQ(img_decode(buf, len, 1000000, &im, err, sizeof(err)),
                     RF_ERR_DECODE);
        CHECK(im.rgb == NULL);
        CHECK_INT_EQ(img_decode_scaled(buf, len, 1000000, 8, &im, &info,
                                       err, sizeof(err)), RF_ERR_DECODE);
        CHECK(im.rgb == NULL);
        free(buf);
    }
}

static void test_jpeg_dht_counts_over_256(void)
{
    struct img im;
    char err[256] = "";
    size_t len, at;
    int w, h;
    unsigned char *buf = slurp("dht_counts_over_256.jpg", &len);

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(img_probe(buf, len, &w, &h), RF_ERR_DECODE);
    CHECK_INT_EQ(img_decode(buf, len, 1000000, &im, err, sizeof(err)),
                 RF_ERR_DECODE);
    CHECK(im.rgb == NULL);
    free(buf);

    buf = slurp("photo40x30.jpg", &len);
    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    for (at = 0; at + 1 < len; at++) {
        if (buf[at] == 0xFF && buf[at + 1] == 0xC4) {
            break;
        }
    }
    CHECK(at + 21 < len);
    if (at + 21 < len) {
        /* FF C4, 2 length bytes, the class/id byte, then 16 counts. */
        memset(buf + at + 5, 17, 16);
        CHECK_INT_EQ(img_probe(buf, len, &w, &h), RF_ERR_DECODE);
        CHECK_INT_EQ(img_decode(buf, len, 1000000, &im, err, sizeof(err)),
                     RF_ERR_DECODE);
        CHECK(im.rgb == NULL);
    }
    free(buf);
}

/*
 * Found by the hostile corpus (tests/e2e/hostile): a top-down BMP (negative
 * height in the header) was refused as undecodable, because stb's header
 * probe reports the height negative. The fixture with its height negated
 * must decode to the same image flipped vertically.
 */
static void test_bmp_top_down(void)
{
    struct img im;
    char err[256] = "";
    size_t len, ref_len;
    int w = 0, h = 0;
    unsigned char *buf = slurp("rgb13x9.bmp", &len);
    unsigned char *ref = slurp("rgb13x9.bmp.rgb", &ref_len);
    int32_t height;

    CHECK(buf != NULL && ref != NULL && len > 26 && ref_len == 13 * 9 * 3);
    if (buf == NULL || ref == NULL || len <= 26 || ref_len != 13 * 9 * 3) {
        free(buf);
        free(ref);
        return;
    }
    memcpy(&height, buf + 22, 4);
    CHECK_INT_EQ(height, 9);
    height = -height;
    memcpy(buf + 22, &height, 4);

    CHECK_INT_EQ(img_probe(buf, len, &w, &h), RF_OK);
    CHECK_INT_EQ(w, 13);
    CHECK_INT_EQ(h, 9);
    CHECK_INT_EQ(img_decode(buf, len, 1000000, &im, err, sizeof(err)), RF_OK);
    if (im.rgb != NULL) {
        CHECK_INT_EQ(im.height, 9);
        for (int y = 0; y < 9; y++) {
            CHECK(memcmp(im.rgb + (size_t)y * 13 * 3,
                         ref + (size_t)(8 - y) * 13 * 3, 13 * 3) == 0);
        }
    }
    img_release(&im);
    free(buf);
    free(ref);
}

static void test_centre_rect(void)
{
    static const struct {
        int w, h;
        double crop;
        struct prep_rect want;
    } cases[] = {
        { 100, 50, 0.8, { 10, 5, 80, 40 } },
        { 37, 23, 0.8, { 3, 2, 30, 18 } },    /* 29.6 -> 30, 18.4 -> 18 */
        { 10, 10, 1.0, { 0, 0, 10, 10 } },
        { 3, 3, 0.5, { 0, 0, 2, 2 } },        /* 1.5 rounds up */
        { 5, 5, 0.1, { 2, 2, 1, 1 } },        /* 0.5 rounds up to 1 */
        { 1, 1, 0.1, { 0, 0, 1, 1 } },        /* at least one pixel */
        { 4, 1, 0.2, { 1, 0, 1, 1 } },        /* 0.8 -> 1, 0.2 -> 1 */
        { 640, 480, 0.8, { 64, 48, 512, 384 } },
        { 7, 1000, 0.33, { 2, 335, 2, 330 } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct prep_rect r = { -1, -1, -1, -1 };

        prep_centre_rect(cases[i].w, cases[i].h, cases[i].crop, &r);
        CHECK_INT_EQ(r.x, cases[i].want.x);
        CHECK_INT_EQ(r.y, cases[i].want.y);
        CHECK_INT_EQ(r.width, cases[i].want.width);
        CHECK_INT_EQ(r.height, cases[i].want.height);
        if (r.x != cases[i].want.x || r.y != cases[i].want.y ||
            r.width != cases[i].want.width ||
            r.height != cases[i].want.height) {
            fprintf(stderr, "  case %zu: %dx%d crop %g\n", i, cases[i].w,
                    cases[i].h, cases[i].crop);
        }
    }
}

/* Compares prep_tensor's output with a .t224 file (see make_fixtures.py:
 * int32 n, int32 idx[n], float32 v[3][n][n]). Returns the worst error. */
static double compare_tensor(const float *out, const char *ref_name)
{
    size_t len = 0;
    unsigned char *ref = slurp(ref_name, &len);
    int32_t n;
    const int32_t *idx;
    const float *v;
    double worst = -1.0;

    CHECK(ref != NULL);
    if (ref == NULL) {
        return worst;
    }
    memcpy(&n, ref, 4);
    CHECK(n > 0 && n <= 224);
    CHECK_INT_EQ(len, 4 + 4 * (size_t)n + 4 * 3 * (size_t)n * (size_t)n);
    if (n > 0 && n <= 224 &&
        len == 4 + 4 * (size_t)n + 4 * 3 * (size_t)n * (size_t)n) {
        /* The buffer comes from malloc, so its alignment suits both. */
        idx = (const int32_t *)(ref + 4);
        v = (const float *)(ref + 4 + 4 * (size_t)n);
        worst = 0.0;
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    float got = out[((size_t)c * 224 + (size_t)idx[i]) * 224 +
                                    (size_t)idx[j]];
                    float want = v[((size_t)c * (size_t)n + (size_t)i) *
                                   (size_t)n + (size_t)j];
                    double d = fabs((double)got - (double)want);

                    worst = d > worst ? d : worst;
                }
            }
        }
    }
    free(ref);
    return worst;
}

static void check_preprocess(const char *image, const struct prep_rect *rect,
                             const char *ref_name)
{
    struct img im = { 0 };
    struct prep_rect whole;
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    double worst;

    CHECK(out != NULL);
    if (out == NULL || decode_fixture(image, &im) != 0) {
        free(out);
        return;
    }
    if (rect == NULL) {
        whole = (struct prep_rect){ 0, 0, im.width, im.height };
        rect = &whole;
    }
    CHECK_INT_EQ(prep_tensor(&im, rect, &imagenet, out), RF_OK);
    worst = compare_tensor(out, ref_name);
    fprintf(stderr, "  %s: max |C - numpy| = %g\n", ref_name, worst);
    CHECK(worst >= 0.0);
    CHECK(worst <= 1e-4);
    img_release(&im);
    free(out);
}

static void test_preprocess_rgb_png(void)
{
    check_preprocess("rgb37x23.png", NULL, "rgb37x23.png.t224");
}

static void test_preprocess_grey_png(void)
{
    /* 20 x 31: an odd difference of 11, so 5 columns left, 6 right. */
    check_preprocess("grey20x31.png", NULL, "grey20x31.png.t224");
}

static void test_preprocess_rect(void)
{
    struct prep_rect r = { 5, 3, 20, 17 };

    check_preprocess("rgb37x23.png", &r, "rgb37x23.png.rect5_3_20_17.t224");
}

/*
 * A white w x h image, padded to a square of side `side` and "resized" to
 * the same side (scale 1, so each output pixel is one input pixel) with
 * mean 0 and std 1: output is 1 on the image and exactly 0 on the padding.
 * face-api puts round(diff / 2) lines after the image and the rest before.
 */
static void check_padding(int w, int h)
{
    int side = w > h ? w : h;
    int diff = side - (w < h ? w : h);
    int after = (diff + 1) / 2, before = diff - after;
    struct prep_spec unit = { side, { 0, 0, 0 }, { 1, 1, 1 } };
    struct prep_rect rect = { 0, 0, w, h };
    struct img im = { w, h, malloc((size_t)3 * (size_t)w * (size_t)h) };
    float *out = malloc(sizeof(float) * 3 * (size_t)side * (size_t)side);
    int bad = 0;

    CHECK(im.rgb != NULL && out != NULL);
    if (im.rgb == NULL || out == NULL) {
        free(im.rgb);
        free(out);
        return;
    }
    memset(im.rgb, 255, (size_t)3 * (size_t)w * (size_t)h);
    CHECK_INT_EQ(prep_tensor(&im, &rect, &unit, out), RF_OK);
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < side; y++) {
            for (int x = 0; x < side; x++) {
                int in_x = w < h ? x >= before && x < before + w : 1;
                int in_y = h < w ? y >= before && y < before + h : 1;
                float want = in_x && in_y ? 1.0f : 0.0f;
                float got = out[((size_t)c * (size_t)side + (size_t)y) *
                                (size_t)side + (size_t)x];

                if (fabsf(got - want) > 1e-6f) {
                    if (bad++ < 4) {
                        fprintf(stderr, "  %dx%d c%d (%d,%d): %g, want %g\n",
                                w, h, c, x, y, got, want);
                    }
                }
            }
        }
    }
    CHECK_INT_EQ(bad, 0);
    free(im.rgb);
    free(out);
}

static void test_odd_padding(void)
{
    check_padding(4, 1);   /* 1 row on top, 2 at the bottom */
    check_padding(1, 4);   /* 1 column left, 2 right */
    check_padding(5, 2);   /* 1 above, 2 below */
    check_padding(2, 5);
    check_padding(9, 2);   /* diff 7: 3 before, 4 after */
    check_padding(6, 4);   /* even: 1 and 1 */
    check_padding(3, 3);   /* no padding */
}

/* The padding rows of a real image: a 5 x 2 grey rectangle at size 5. */
static void test_odd_padding_explicit(void)
{
    struct prep_spec unit = { 5, { 0, 0, 0 }, { 1, 1, 1 } };
    struct prep_rect rect = { 0, 0, 5, 2 };
    unsigned char px[5 * 2 * 3];
    struct img im = { 5, 2, px };
    float out[3 * 5 * 5];

    memset(px, 51, sizeof(px));   /* 0.2 after scaling */
    CHECK_INT_EQ(prep_tensor(&im, &rect, &unit, out), RF_OK);
    CHECK_NEAR(out[0 * 5 + 2], 0.0, 1e-7);   /* row 0: padding on top */
    CHECK_NEAR(out[1 * 5 + 2], 0.2, 1e-6);   /* rows 1, 2: the image */
    CHECK_NEAR(out[2 * 5 + 2], 0.2, 1e-6);
    CHECK_NEAR(out[3 * 5 + 2], 0.0, 1e-7);   /* rows 3, 4: the extra */
    CHECK_NEAR(out[4 * 5 + 2], 0.0, 1e-7);
}

static void test_prep_errors(void)
{
    unsigned char px[4 * 4 * 3] = { 0 };
    struct img im = { 4, 4, px };
    float out[3 * 8 * 8];
    struct prep_spec spec = { 8, { 0, 0, 0 }, { 1, 1, 1 } };
    struct prep_rect empty = { 0, 0, 0, 4 };
    struct prep_rect outside = { 1, 0, 4, 4 };
    struct prep_rect negative = { -1, 0, 2, 2 };
    struct prep_rect below = { 0, 3, 4, 2 };
    struct prep_rect ok = { 3, 3, 1, 1 };

    CHECK_INT_EQ(prep_tensor(&im, &empty, &spec, out), RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(prep_tensor(&im, &outside, &spec, out), RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(prep_tensor(&im, &negative, &spec, out),
                 RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(prep_tensor(&im, &below, &spec, out), RF_ERR_BAD_REQUEST);
    CHECK_INT_EQ(prep_tensor(&im, &ok, &spec, out), RF_OK);
    spec.size = 0;
    CHECK_INT_EQ(prep_tensor(&im, &ok, &spec, out), RF_ERR_CONFIG);
    spec.size = PREP_MAX_SIZE + 1;
    CHECK_INT_EQ(prep_tensor(&im, &ok, &spec, out), RF_ERR_CONFIG);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        dir = argv[1];
    }

    RUN(test_decode_png_rgb);
    RUN(test_decode_png_grey);
    RUN(test_decode_bmp);
    RUN(test_decode_gif);
    RUN(test_decode_jpeg);
    RUN(test_probe);
    RUN(test_png_header_bytes);
    RUN(test_pixel_cap_10000);
    RUN(test_pixel_cap_30000);
    RUN(test_pixel_cap_100000);
    RUN(test_pixel_cap_other_formats);
    RUN(test_pixel_cap_boundary);
    RUN(test_truncated_png);
    RUN(test_truncated_jpeg);
    RUN(test_truncated_bmp_gif);
    RUN(test_jpeg_dht_counts_over_256);
    RUN(test_jpeg_undefined_huffman_table);
    RUN(test_png_bad_chunks);
    RUN(test_bmp_top_down);
    RUN(test_centre_rect);
    RUN(test_preprocess_rgb_png);
    RUN(test_preprocess_grey_png);
    RUN(test_preprocess_rect);
    RUN(test_odd_padding);
    RUN(test_odd_padding_explicit);
    RUN(test_prep_errors);
    return check_summary("image");
}
