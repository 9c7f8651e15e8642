/*
 * libFuzzer harness for the image path of a request: libmagic's verdict
 * (core/sniff), the header probe and pixel cap, stb_image's decode
 * (core/image) and the crop, pad, resize and normalise (core/preprocess),
 * in the order core/predict.c runs them; then the serving decoder,
 * img_decode_scaled() (libjpeg-turbo at reduced size, libexif's
 * orientation), at a small target side so that small JPEGs take the
 * reduced path too. The input is the uploaded file.
 *
 * Besides sanitizer reports, it traps on broken promises: a refused file
 * must not come back with pixels, a decoded image must respect the cap and
 * the probe's dimensions (divided by the scale, turned by the
 * orientation), and every tensor value must be finite.
 *
 * The pixel cap here is 4 Mpx, not the service's 40 Mpx: the code path is
 * the same, and a 120 MB buffer per input would slow the fuzzer tenfold.
 * Built and run by `make fuzz` (see tests/fuzz/README.md).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/image.h"
#include "core/preprocess.h"
#include "core/sniff.h"

#define FUZZ_MAX_PIXELS (4LL * 1000 * 1000)
#define FUZZ_SIDE 64
/* img_decode_scaled()'s target side: a JPEG of 16 px or more shrinks. */
#define FUZZ_MIN_SIDE 8

/* One libmagic cookie for the whole run, as a worker keeps one. */
static struct sniffer *fuzz_sniffer;
static float fuzz_tensor[3 * FUZZ_SIDE * FUZZ_SIDE];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_sniffer = sniff_new(err, sizeof(err));
    if (fuzz_sniffer == NULL) {
        fprintf(stderr, "fuzz_image: %s\n", err);
        abort();
    }
    return 0;
}

static void fuzz_preprocess(const struct img *im, double crop)
{
    const struct prep_spec spec = {
        .size = FUZZ_SIDE,
        .mean = { 0.485f, 0.456f, 0.406f },
        .std = { 0.229f, 0.224f, 0.225f },
    };
    struct prep_rect rect;

    prep_centre_rect(im->width, im->height, crop, &rect);
    if (prep_tensor(im, &rect, &spec, fuzz_tensor) != RF_OK) {
        __builtin_trap();
    }
    for (size_t i = 0; i < sizeof(fuzz_tensor) / sizeof(fuzz_tensor[0]);
         i++) {
        if (!isfinite(fuzz_tensor[i])) {
            __builtin_trap();
        }
    }
}

/* ceil(n / d), as libjpeg-turbo sizes a scaled decode. */
static int scaled_side(int n, int d)
{
    return (n + d - 1) / d;
}

/*
 * The serving decoder on the same file. Its result may differ from
 * img_decode()'s (libjpeg-turbo can read what stb refuses), but what it
 * returns must hold together.
 */
static void fuzz_decode_scaled(const uint8_t *data, size_t size, int probe_ok,
                               int pw, int ph)
{
    struct img im;
    struct img_info info;
    char err[256];
    int w, h;

    if (img_decode_scaled(data, size, FUZZ_MAX_PIXELS, FUZZ_MIN_SIDE, &im,
                          &info, err, sizeof(err)) != RF_OK) {
        if (im.rgb != NULL || err[0] == '\0') {
            __builtin_trap();
        }
        return;
    }
    if (!probe_ok || info.file_width != pw || info.file_height != ph ||
        (long long)pw * ph > FUZZ_MAX_PIXELS ||
        info.orientation < 1 || info.orientation > 8 ||
        (info.scale != 1 && info.scale != 2 && info.scale != 4 &&
         info.scale != 8)) {
        __builtin_trap();
    }
    w = scaled_side(pw, info.scale);
    h = scaled_side(ph, info.scale);
    /* Orientations 5 to 8 are the quarter turns. */
    if (info.orientation >= 5) {
        int t = w;

        w = h;
        h = t;
    }
    if (im.width != w || im.height != h) {
        __builtin_trap();
    }
    fuzz_preprocess(&im, 0.8);
    img_release(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum sniff_format format;
    const char *mime;
    struct img im;
    int pw = 0, ph = 0;
    enum rf_result probe, r;
    char err[256];

    /*
     * The service refuses what libmagic refuses before decoding; the
     * decoder still sees every input here, since a sniffing bug must not
     * be the only thing between a file and stb.
     */
    (void)sniff_detect(fuzz_sniffer, data, size, &format, &mime);

    probe = img_probe(data, size, &pw, &ph);
    fuzz_decode_scaled(data, size, probe == RF_OK, pw, ph);
    r = img_decode(data, size, FUZZ_MAX_PIXELS, &im, err, sizeof(err));
    if (r != RF_OK) {
        if (im.rgb != NULL || err[0] == '\0') {
            __builtin_trap();
        }
        return 0;
    }
    if (probe != RF_OK || im.width != pw || im.height != ph ||
        (long long)im.width * im.height > FUZZ_MAX_PIXELS) {
        __builtin_trap();
    }

    /* The service's crop, and the whole image (crop 1). */
    fuzz_preprocess(&im, 0.8);
    fuzz_preprocess(&im, 1.0);
    img_release(&im);
    return 0;
}
