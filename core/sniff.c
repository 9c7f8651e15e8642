/* libmagic behind an allow-list of image MIME types (see core/sniff.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/sniff.h"

#include <magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every signature we accept sits in the first bytes of the file; passing
 * libmagic a bounded prefix keeps a 10 MB upload from costing a scan of
 * 10 MB.
 */
#define SNIFF_PREFIX_BYTES 4096

struct sniffer {
    magic_t cookie;
};

static const struct {
    const char *mime;
    enum sniff_format format;
} allowed[] = {
    { "image/jpeg", SNIFF_JPEG },
    { "image/png", SNIFF_PNG },
    { "image/bmp", SNIFF_BMP },
    { "image/x-ms-bmp", SNIFF_BMP },
    { "image/gif", SNIFF_GIF },
};

struct sniffer *sniff_new(char *err, size_t errlen)
{
    struct sniffer *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    /* Only the MIME type; no decompression, no guessing from text. */
    s->cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS |
                           MAGIC_NO_CHECK_ENCODING | MAGIC_ERROR);
    if (s->cookie == NULL) {
        snprintf(err, errlen, "magic_open failed");
        goto fail;
    }
    if (magic_load(s->cookie, NULL) != 0) {
        snprintf(err, errlen, "magic_load failed: %s",
                 magic_error(s->cookie));
        goto fail;
    }
    return s;

fail:
    sniff_free(s);
    return NULL;
}

void sniff_free(struct sniffer *s)
{
    if (s == NULL) {
        return;
    }
    if (s->cookie != NULL) {
        magic_close(s->cookie);
    }
    free(s);
}

enum rf_result sniff_detect(struct sniffer *s, const unsigned char *buf,
                            size_t len, enum sniff_format *format,
                            const char **mime)
{
    const char *found;

    *format = SNIFF_NONE;
    *mime = "empty";
    if (len == 0) {
        return RF_ERR_UNSUPPORTED;
    }

    found = magic_buffer(s->cookie, buf,
                         len < SNIFF_PREFIX_BYTES ? len : SNIFF_PREFIX_BYTES);
    if (found == NULL) {
        *mime = "unknown";
        return RF_ERR_IO;
    }
    *mime = found;

    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (strcmp(found, allowed[i].mime) == 0) {
            *format = allowed[i].format;
            *mime = sniff_mime(*format);
            return RF_OK;
        }
    }
    return RF_ERR_UNSUPPORTED;
}

const char *sniff_mime(enum sniff_format format)
{
    switch (format) {
    case SNIFF_JPEG:
        return "image/jpeg";
    case SNIFF_PNG:
        return "image/png";
    case SNIFF_BMP:
        return "image/bmp";
    case SNIFF_GIF:
        return "image/gif";
    case SNIFF_NONE:
        break;
    }
    return "application/octet-stream";
}
