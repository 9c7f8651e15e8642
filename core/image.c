/*
 * stb_image, compiled here and nowhere else, with only the decoders Reface
 * accepts. Debian 12's libstb (a 2022 snapshot of stb_image 2.27) carries
 * the GHSL-2023-145..151 findings. What that means for this file:
 * - TGA, PNM, HDR, PSD and PIC are not compiled (STBI_ONLY_*), so their
 *   bugs are unreachable.
 * - GIF is compiled for its first frame only: we call stbi_load_from_memory,
 *   which passes no "two frames back" buffer to stbi__gif_load_next; the
 *   double frees and the wild read sit in stbi_load_gif_from_memory's
 *   animation loop, which we never call.
 * - The vertical flip path is never enabled.
 * - Its JPEG DHT parser trusts the table's code counts: counts summing to
 *   more than 256 make stbi__build_huffman write past its size[257] array
 *   (found by tests/fuzz/fuzz_image.c; stb 2.28 added the missing check).
 *   dht_overflows() below refuses such files before stb reads them.
 * The pixel cap is checked from the header before stb allocates anything,
 * and the fuzz harnesses run this exact file under ASan and UBSan.
 */
#include "core/image.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
/* A second line of defence behind max_pixels: no side above 32768. */
#define STBI_MAX_DIMENSIONS (1 << 15)
#define STB_IMAGE_IMPLEMENTATION

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

/* A missing byte reads as 0, as stbi__get8 gives past the end. */
static unsigned byte_at(const unsigned char *buf, size_t len, size_t i)
{
    return i < len ? buf[i] : 0;
}

/*
 * True if any DHT segment stb could meet holds a table whose 16 code
 * counts sum to more than 256. stb finds a marker as 0xFF then its code,
 * so every DHT it could parse starts at some FF C4 pair; checking each such
 * pair in the file, wherever it sits, needs no marker walk that could
 * disagree with stb's. The loop mirrors stb's DHT parser: a table class or
 * id stb refuses ends the segment, as it ends stb's parse.
 */
static bool dht_overflows(const unsigned char *buf, size_t len)
{
    for (size_t at = 0; at + 1 < len; at++) {
        long left;
        size_t i;

        if (buf[at] != 0xFF || buf[at + 1] != 0xC4) {
            continue;
        }
        i = at + 2;
        left = (long)(byte_at(buf, len, i) << 8 | byte_at(buf, len, i + 1))
               - 2;
        i += 2;
        while (left > 0 && i < len) {
            unsigned q = byte_at(buf, len, i++);
            long n = 0;

            if ((q >> 4) > 1 || (q & 15) > 3) {
                break;
            }
            for (int k = 0; k < 16; k++) {
                n += byte_at(buf, len, i++);
            }
            if (n > 256) {
                return true;
            }
            i += (size_t)n;
            left -= 17 + n;
        }
    }
    return false;
}

/*
 * stb refuses some headers as "too large" (over STBI_MAX_DIMENSIONS, or a
 * PNG over 1 GiB of pixels), but stbi_info_from_memory() then tries the
 * other decoders and the reason is lost. Asking each compiled decoder on
 * its own (internal functions of the copy compiled into this file) tells a
 * decompression bomb from a corrupt file, so the client gets a 413.
 */
static int refused_as_too_large(const unsigned char *buf, int len)
{
    int (*const probes[])(stbi__context *, int *, int *, int *) = {
        stbi__jpeg_info, stbi__png_info, stbi__gif_info, stbi__bmp_info,
    };

    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        stbi__context ctx;
        int w, h, comp;

        stbi__start_mem(&ctx, buf, len);
        if (!probes[i](&ctx, &w, &h, &comp) &&
            strcmp(stbi_failure_reason(), "too large") == 0) {
            return 1;
        }
    }
    return 0;
}

enum rf_result img_probe(const unsigned char *buf, size_t len, int *width,
                         int *height)
{
    int comp;

    if (len == 0 || len > (size_t)0x7fffffff || dht_overflows(buf, len)) {
        return RF_ERR_DECODE;
    }
    if (!stbi_info_from_memory(buf, (int)len, width, height, &comp)) {
        return refused_as_too_large(buf, (int)len) ? RF_ERR_TOO_MANY_PIXELS
                                                   : RF_ERR_DECODE;
    }
    /*
     * A top-down BMP stores a negative height; stb's header reader passes
     * it on as is, while its loader decodes the absolute value.
     */
    if (*height < 0 && *height != INT_MIN) {
        *height = -*height;
    }
    if (*width <= 0 || *height <= 0) {
        return RF_ERR_DECODE;
    }
    return RF_OK;
}

enum rf_result img_decode(const unsigned char *buf, size_t len,
                          long long max_pixels, struct img *out,
                          char *err, size_t errlen)
{
    int w, h, comp;
    unsigned char *pixels;
    enum rf_result r;

    memset(out, 0, sizeof(*out));
    r = img_probe(buf, len, &w, &h);
    if (r != RF_OK) {
        snprintf(err, errlen, "%s", r == RF_ERR_TOO_MANY_PIXELS
                 ? "image header over stb's size limits"
                 : "unreadable image header");
        return r;
    }
    if ((long long)w * (long long)h > max_pixels) {
        snprintf(err, errlen, "image %dx%d over the pixel cap %lld", w, h,
                 max_pixels);
        return RF_ERR_TOO_MANY_PIXELS;
    }

    pixels = stbi_load_from_memory(buf, (int)len, &w, &h, &comp, 3);
    if (pixels == NULL) {
        const char *why = stbi_failure_reason();

        snprintf(err, errlen, "decode failed: %s", why ? why : "unknown");
        return strcmp(why ? why : "", "outofmem") == 0 ? RF_ERR_NOMEM
                                                       : RF_ERR_DECODE;
    }

    /* The decoder re-reads the header; it must agree with the probe. */
    if ((long long)w * (long long)h > max_pixels) {
        stbi_image_free(pixels);
        snprintf(err, errlen, "image %dx%d over the pixel cap", w, h);
        return RF_ERR_TOO_MANY_PIXELS;
    }

    out->width = w;
    out->height = h;
    out->rgb = pixels;
    return RF_OK;
}

void img_release(struct img *im)
{
    if (im == NULL) {
        return;
    }
    stbi_image_free(im->rgb);
    memset(im, 0, sizeof(*im));
}
