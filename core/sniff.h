/*
 * Content sniffing with libmagic: decides from the bytes alone whether an
 * upload is one of the image types Reface accepts. The client's file name and
 * Content-Type are never consulted.
 */
#ifndef REFACE_CORE_SNIFF_H
#define REFACE_CORE_SNIFF_H

#include <stddef.h>

#include "core/result.h"

enum sniff_format {
    SNIFF_NONE = 0,
    SNIFF_JPEG,
    SNIFF_PNG,
    SNIFF_BMP,
    SNIFF_GIF
};

struct sniffer;

/*
 * Opens and loads libmagic's database. Create one per worker, after fork.
 * Returns NULL with a reason in `err` on failure.
 */
struct sniffer *sniff_new(char *err, size_t errlen);

/* Frees the sniffer; NULL is allowed. */
void sniff_free(struct sniffer *s);

/*
 * Looks at the first bytes of `buf` and sets `*format` and `*mime` (a
 * constant string such as "image/png"). Returns RF_OK for an allowed type,
 * RF_ERR_UNSUPPORTED for anything else (then `*format` is SNIFF_NONE and
 * `*mime` what libmagic said, for the log), RF_ERR_IO if libmagic failed.
 */
enum rf_result sniff_detect(struct sniffer *s, const unsigned char *buf,
                            size_t len, enum sniff_format *format,
                            const char **mime);

/* The MIME type Reface answers with for a format ("image/jpeg"). */
const char *sniff_mime(enum sniff_format format);

#endif
