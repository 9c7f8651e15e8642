/*
 * Tests of core/sniff: the four accepted image types are recognised from
 * their bytes with the right format and MIME type, and everything else
 * (text named .jpg, PDF, WebP, TIFF, an empty buffer) is refused. The
 * fixtures are shared with test_image and live in tests/unit/image/,
 * beside the folder given as argv[1] (see make_fixtures.py there).
 */
#define _POSIX_C_SOURCE 200809L

#include "core/sniff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

static struct sniffer *sniffer;
static char image_dir[512];

/* Reads a whole fixture into a heap buffer of exactly its size. */
static unsigned char *slurp(const char *name, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", image_dir, name);
    return check_read_file(path, len);
}

static void expect_file(const char *name, enum rf_result want_rc,
                        enum sniff_format want_format, const char *want_mime)
{
    enum sniff_format format = SNIFF_JPEG;
    const char *mime = NULL;
    size_t len = 0;
    unsigned char *buf = slurp(name, &len);

    CHECK(buf != NULL);
    if (buf == NULL) {
        return;
    }
    CHECK_INT_EQ(sniff_detect(sniffer, buf, len, &format, &mime), want_rc);
    CHECK_INT_EQ(format, want_format);
    CHECK(mime != NULL);
    if (want_mime != NULL) {
        CHECK_STR_EQ(mime, want_mime);
    }
    if (want_rc != RF_OK) {
        fprintf(stderr, "  %s refused as %s\n", name, mime ? mime : "?");
    }
    free(buf);
}

static void test_accepts_jpeg(void)
{
    expect_file("photo40x30.jpg", RF_OK, SNIFF_JPEG, "image/jpeg");
}

static void test_accepts_png(void)
{
    expect_file("rgb37x23.png", RF_OK, SNIFF_PNG, "image/png");
    expect_file("grey20x31.png", RF_OK, SNIFF_PNG, "image/png");
}

static void test_accepts_bmp(void)
{
    /* libmagic says image/bmp or image/x-ms-bmp; we answer image/bmp. */
    expect_file("rgb13x9.bmp", RF_OK, SNIFF_BMP, "image/bmp");
}

static void test_accepts_gif(void)
{
    expect_file("pal24x17.gif", RF_OK, SNIFF_GIF, "image/gif");
}

static void test_refuses_text_named_jpg(void)
{
    expect_file("text.jpg", RF_ERR_UNSUPPORTED, SNIFF_NONE, "text/plain");
}

static void test_refuses_pdf(void)
{
    expect_file("refuse.pdf", RF_ERR_UNSUPPORTED, SNIFF_NONE,
                "application/pdf");
}

static void test_refuses_webp(void)
{
    expect_file("refuse.webp", RF_ERR_UNSUPPORTED, SNIFF_NONE, NULL);
}

static void test_refuses_tiff(void)
{
    expect_file("refuse.tiff", RF_ERR_UNSUPPORTED, SNIFF_NONE, "image/tiff");
}

static void test_refuses_empty(void)
{
    static const unsigned char one = 0;
    enum sniff_format format = SNIFF_PNG;
    const char *mime = NULL;

    CHECK_INT_EQ(sniff_detect(sniffer, &one, 0, &format, &mime),
                 RF_ERR_UNSUPPORTED);
    CHECK_INT_EQ(format, SNIFF_NONE);
    CHECK(mime != NULL);
}

/* Bytes with no known magic number are refused, not guessed at. */
static void test_refuses_garbage(void)
{
    unsigned char junk[64];
    enum sniff_format format = SNIFF_PNG;
    const char *mime = NULL;

    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (unsigned char)(i * 37u + 11u);
    }
    CHECK_INT_EQ(sniff_detect(sniffer, junk, sizeof(junk), &format, &mime),
                 RF_ERR_UNSUPPORTED);
    CHECK_INT_EQ(format, SNIFF_NONE);
}

/* A large upload is judged from its prefix: a JPEG followed by megabytes
 * of anything is still a JPEG, and the call does not read past len. */
static void test_large_buffer_prefix(void)
{
    size_t len = 0, big = 3u * 1024 * 1024;
    unsigned char *jpg = slurp("photo40x30.jpg", &len);
    unsigned char *buf = malloc(big);
    enum sniff_format format = SNIFF_NONE;
    const char *mime = NULL;

    CHECK(jpg != NULL && buf != NULL);
    if (jpg != NULL && buf != NULL) {
        memset(buf, 'x', big);
        memcpy(buf, jpg, len);
        CHECK_INT_EQ(sniff_detect(sniffer, buf, big, &format, &mime), RF_OK);
        CHECK_INT_EQ(format, SNIFF_JPEG);
    }
    free(jpg);
    free(buf);
}

static void test_mime_names(void)
{
    CHECK_STR_EQ(sniff_mime(SNIFF_JPEG), "image/jpeg");
    CHECK_STR_EQ(sniff_mime(SNIFF_PNG), "image/png");
    CHECK_STR_EQ(sniff_mime(SNIFF_BMP), "image/bmp");
    CHECK_STR_EQ(sniff_mime(SNIFF_GIF), "image/gif");
    CHECK_STR_EQ(sniff_mime(SNIFF_NONE), "application/octet-stream");
}

int main(int argc, char **argv)
{
    char err[256] = "";
    const char *dir = argc > 1 ? argv[1] : "tests/unit/sniff";
    const char *slash = strrchr(dir, '/');
    int rc;

    /* argv[1] is tests/unit/sniff; the images sit in its sibling. */
    snprintf(image_dir, sizeof(image_dir), "%.*s/image",
             slash != NULL ? (int)(slash - dir) : 1,
             slash != NULL ? dir : ".");

    sniffer = sniff_new(err, sizeof(err));
    if (sniffer == NULL) {
        fprintf(stderr, "sniff_new failed: %s\n", err);
        printf("RESULT sniff 0 1\n");
        return 1;
    }

    RUN(test_accepts_jpeg);
    RUN(test_accepts_png);
    RUN(test_accepts_bmp);
    RUN(test_accepts_gif);
    RUN(test_refuses_text_named_jpg);
    RUN(test_refuses_pdf);
    RUN(test_refuses_webp);
    RUN(test_refuses_tiff);
    RUN(test_refuses_empty);
    RUN(test_refuses_garbage);
    RUN(test_large_buffer_prefix);
    RUN(test_mime_names);

    sniff_free(sniffer);
    sniff_free(NULL);
    rc = check_summary("sniff");
    return rc;
}
