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
 * - Its PNG reader copies an IDAT chunk to `idata + offset`; for an empty
 *   first IDAT that is a null pointer plus 0, undefined behaviour that
 *   UBSan reports (found by fuzz_image) and that lets a compiler assume
 *   the pointer non-null further on. It also grows its IDAT buffer to the
 *   chunk's declared length before reading it: 655 bytes claiming a 1 GB
 *   chunk made it ask for 2 GB (fuzz_image again). png_chunks_bad()
 *   refuses both before stb reads the file: an empty IDAT carries no
 *   pixels, and a chunk longer than the file is a truncated file stb
 *   refuses anyway.
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
/*
 * Zeroed allocations. stb does not initialise a JPEG's Huffman tables: a
 * scan that uses a table the file never defined decodes with whatever the
 * heap held, and indexes its 257-entry tables with that (fuzz_image found
 * an index of -1903259256 under UBSan; valgrind shows the uninitialised
 * reads; tests/fuzz/regressions/image/jpeg_undefined_huffman_table). A
 * zeroed table decodes every code as symbol 0 in zero bits, in bounds, and
 * the block ends; the same file then decodes, or fails, the same way
 * every time.
 */
#define STBI_MALLOC(size) calloc(1, (size))
#define STBI_REALLOC(p, size) realloc((p), (size))
#define STBI_FREE(p) free(p)
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

#include <libexif/exif-data.h>
#include <turbojpeg.h>

/* Scales img_decode_scaled() tries, smallest first: 1/8, 1/4, 1/2. */
static const int scale_denoms[] = { 8, 4, 2 };

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

/* A big-endian 32-bit value at `p` (four readable bytes). */
static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
           (unsigned long)p[2] << 8 | (unsigned long)p[3];
}

/*
 * True if `buf` is a PNG whose first IDAT chunk is empty, or with a chunk
 * before IEND that claims more bytes than the buffer holds. Walks the
 * chunks as stb does (length, type, data, CRC; the CRC is not checked) up
 * to IEND or the end of the buffer.
 */
static bool png_chunks_bad(const unsigned char *buf, size_t len)
{
    static const unsigned char signature[8] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'
    };
    size_t at = sizeof(signature);
    bool seen_idat = false;

    if (len < at || memcmp(buf, signature, at) != 0) {
        return false;
    }
    while (len - at >= 8) {
        unsigned long n = be32(buf + at);
        const unsigned char *type = buf + at + 4;

        if (memcmp(type, "IEND", 4) == 0) {
            return false;
        }
        if (memcmp(type, "IDAT", 4) == 0) {
            if (n == 0 && !seen_idat) {
                return true;
            }
            seen_idat = true;
        }
        if (n > len - at - 8) {
            return true;
        }
        if (len - at - 8 - n < 4) {
            return false;
        }
        at += 8 + n + 4;
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

    if (len == 0 || len > (size_t)0x7fffffff || dht_overflows(buf, len) ||
        png_chunks_bad(buf, len)) {
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

static bool is_jpeg(const unsigned char *buf, size_t len)
{
    return len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF;
}

/*
 * The EXIF orientation of a JPEG (1..8), or 1 when it has none or an
 * invalid one. libexif reads the APP1 segment; the options it sets by
 * default would also "fix" the data to the specification and parse maker
 * notes, neither of which a single tag needs.
 */
static int exif_orientation(const unsigned char *buf, size_t len)
{
    ExifData *ed;
    ExifEntry *e;
    int v = 1;

    if (!is_jpeg(buf, len) || len > 0xffffffffu) {
        return 1;
    }
    ed = exif_data_new();
    if (ed == NULL) {
        return 1;
    }
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_set_option(ed, EXIF_DATA_OPTION_DONT_CHANGE_MAKER_NOTE);
    exif_data_load_data(ed, buf, (unsigned int)len);
    e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e != NULL && e->format == EXIF_FORMAT_SHORT && e->components >= 1 &&
        e->data != NULL && e->size >= 2) {
        v = exif_get_short(e->data, exif_data_get_byte_order(ed));
    }
    exif_data_unref(ed);
    return v >= 1 && v <= 8 ? v : 1;
}

/*
 * Turns `im` the way EXIF orientation `o` says a viewer shows it (the
 * TIFF definitions: 2 mirror, 3 half turn, 4 flip, 5 transpose, 6 quarter
 * turn clockwise, 7 transverse, 8 quarter turn anticlockwise).
 */
static enum rf_result apply_orientation(struct img *im, int o)
{
    int w = im->width, h = im->height;
    int ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    unsigned char *dst;

    if (o == 1) {
        return RF_OK;
    }
    dst = malloc((size_t)w * (size_t)h * 3);
    if (dst == NULL) {
        return RF_ERR_NOMEM;
    }
    for (int oy = 0; oy < oh; oy++) {
        unsigned char *d = dst + (size_t)oy * (size_t)ow * 3;

        for (int ox = 0; ox < ow; ox++, d += 3) {
            int sx, sy;
            const unsigned char *s;

            switch (o) {
            case 2: sx = w - 1 - ox; sy = oy; break;
            case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;
            case 4: sx = ox; sy = h - 1 - oy; break;
            case 5: sx = oy; sy = ox; break;
            case 6: sx = oy; sy = h - 1 - ox; break;
            case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;
            default: sx = w - 1 - oy; sy = ox; break; /* 8 */
            }
            s = im->rgb + ((size_t)sy * (size_t)w + (size_t)sx) * 3;
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    free(im->rgb);
    im->rgb = dst;
    im->width = ow;
    im->height = oh;
    return RF_OK;
}

/*
 * The denominator img_decode_scaled() decodes a w x h JPEG at for
 * `min_side`, or 1 for a full decode.
 */
static int pick_scale(int w, int h, int min_side)
{
    int shorter = w < h ? w : h;

    if (min_side <= 0) {
        return 1;
    }
    for (size_t i = 0; i < sizeof(scale_denoms) / sizeof(scale_denoms[0]);
         i++) {
        int d = scale_denoms[i];

        if ((shorter + d - 1) / d >= min_side) {
            return d;
        }
    }
    return 1;
}

/*
 * Decodes a JPEG at 1/denom of its size with libjpeg-turbo. Returns RF_OK,
 * RF_ERR_NOMEM, or RF_ERR_DECODE for anything it does not decode cleanly
 * (the caller then leaves the file to stb). `want_w` x `want_h` is the size
 * stb's probe read, which the pixel cap was checked against: a file whose
 * header libjpeg-turbo reads otherwise (two frame headers, say) is left to
 * stb too, so the cap always holds for the pixels allocated here.
 */
static enum rf_result turbo_decode(const unsigned char *buf, size_t len,
                                   int denom, int want_w, int want_h,
                                   struct img *out)
{
    tjscalingfactor sf = { 1, denom };
    int w, h, subsamp, colorspace, sw, sh;
    enum rf_result r = RF_ERR_DECODE;
    unsigned char *pixels = NULL;
    tjhandle tj = tjInitDecompress();

    if (tj == NULL) {
        return RF_ERR_NOMEM;
    }
    if (len > 0xffffffffu ||
        tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp,
                            &colorspace) != 0 ||
        w != want_w || h != want_h ||
        colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
        goto out;
    }
    sw = TJSCALED(w, sf);
    sh = TJSCALED(h, sf);
    pixels = malloc((size_t)sw * (size_t)sh * 3);
    if (pixels == NULL) {
        r = RF_ERR_NOMEM;
        goto out;
    }
    /* Any warning (a truncated or corrupt stream) sends it to stb. */
    if (tjDecompress2(tj, buf, (unsigned long)len, pixels, sw, 0, sh,
                      TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
        goto out;
    }
    out->width = sw;
    out->height = sh;
    out->rgb = pixels;
    pixels = NULL;
    r = RF_OK;
out:
    free(pixels);
    tjDestroy(tj);
    return r;
}

enum rf_result img_decode_scaled(const unsigned char *buf, size_t len,
                                 long long max_pixels, int min_side,
                                 struct img *out, struct img_info *info,
                                 char *err, size_t errlen)
{
    int w = 0, h = 0, denom = 1, o;
    enum rf_result r;

    memset(out, 0, sizeof(*out));
    r = img_probe(buf, len, &w, &h);
    if (r == RF_OK && is_jpeg(buf, len) &&
        (long long)w * (long long)h <= max_pixels &&
        (denom = pick_scale(w, h, min_side)) > 1) {
        r = turbo_decode(buf, len, denom, w, h, out);
        if (r == RF_ERR_NOMEM) {
            snprintf(err, errlen, "out of memory decoding %dx%d at 1/%d",
                     w, h, denom);
            return r;
        }
    } else {
        r = RF_ERR_DECODE;
    }
    /* Small JPEGs, other formats, and what libjpeg-turbo refused. */
    if (r != RF_OK) {
        denom = 1;
        r = img_decode(buf, len, max_pixels, out, err, errlen);
        if (r != RF_OK) {
            return r;
        }
    }
    o = exif_orientation(buf, len);
    r = apply_orientation(out, o);
    if (r != RF_OK) {
        img_release(out);
        snprintf(err, errlen, "out of memory turning the image");
        return r;
    }
    if (info != NULL) {
        info->file_width = w;
        info->file_height = h;
        info->scale = denom;
        info->orientation = o;
    }
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
