/*
 * multipart/form-data parsing (RFC 7578 over RFC 2046) for request bodies
 * that are already complete in memory. Parts borrow from the body, nothing
 * is allocated, every search moves forward so the work is linear in the
 * body size, and the part count and header size have hard limits.
 *
 * Decisions a caller should know (each has a case under tests/unit/multipart):
 * - Only CRLF line endings count. A body that uses bare LF has no delimiter
 *   line, so it is malformed rather than guessed at.
 * - A delimiter line is CRLF "--" boundary, then optional spaces or tabs
 *   (transport padding), then CRLF; the first one may sit at offset 0. A
 *   line that starts with CRLF "--" boundary and continues with anything
 *   else is malformed: RFC 2046 forbids the boundary inside the data, and
 *   guessing would let two parsers read one body two ways.
 * - The preamble before the first delimiter and the epilogue after the
 *   close delimiter are ignored. A body without a close delimiter is
 *   malformed, even when the part a caller wanted was complete before it.
 * - A part without Content-Disposition, with a disposition type other than
 *   form-data, or without a name parameter is counted against max_parts and
 *   otherwise skipped. A part that repeats Content-Disposition, or a
 *   disposition that repeats name or filename, is malformed.
 * - When two parts carry the same name, the first one wins (mp_find).
 * - "filename*=" (RFC 5987) and all other parameters and headers are ignored.
 * - "--boundary--" with no part before it is accepted as an empty form,
 *   which browsers send for a form without fields.
 */
#ifndef REFACE_CORE_MULTIPART_H
#define REFACE_CORE_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "core/result.h"

/* RFC 2046 caps a boundary at 70 characters; add one for the NUL. */
#define MP_BOUNDARY_MAX 70
#define MP_BOUNDARY_SIZE (MP_BOUNDARY_MAX + 1)

struct mp_limits {
    size_t max_parts;        /* every part counts, named or not */
    size_t max_header_bytes; /* one part's header lines including their
                                CRLFs, without the empty line that ends
                                them */
};

/*
 * One part, borrowed from the body given to mp_parse or mp_find: valid as
 * long as that body is. Nothing here is NUL-terminated.
 */
struct mp_part {
    /*
     * The name parameter exactly as it appears between the quotes (or the
     * bare token), so a quoted name keeps its backslash escapes: compare
     * with mp_part_name_eq, and escape it before logging, since it is
     * client bytes and need not be UTF-8. Never NULL for a delivered part;
     * name_len may be 0 for name="".
     */
    const char *name;
    size_t name_len;
    /* Same form as name; NULL when the part has no filename parameter. */
    const char *filename;
    size_t filename_len;
    /* The part body: may be empty, may hold any bytes including NUL. */
    const unsigned char *data;
    size_t len;
    size_t index; /* 0-based position among all parts, named or not */
};

/*
 * Extracts the boundary from a Content-Type header value. The media type
 * must be multipart/form-data (any case); parameters may come in any order
 * and other ones (charset...) are ignored. The boundary may be a bare value
 * or a quoted string (with backslash escapes, and spaces inside), and must
 * be 1..70 characters of the RFC 2046 set, not ending in a space.
 * content_type is a NUL-terminated string. out receives the boundary
 * NUL-terminated; outsz should be at least MP_BOUNDARY_SIZE.
 * Returns RF_OK, or RF_ERR_BAD_REQUEST for a NULL or malformed value, another
 * media type, a missing, empty, repeated, too long or invalid boundary, or a
 * boundary that does not fit in outsz; out is then "" (when outsz > 0).
 */
enum rf_result mp_boundary(const char *content_type, char *out, size_t outsz);

/*
 * Walks body (len bytes, binary, no NUL needed) and calls on_part, in order,
 * for every part that has a name; unnamed parts are counted and skipped. A
 * part is delivered only once the delimiter after it has been checked. If
 * on_part returns false the walk stops and RF_OK is returned without looking
 * at the rest of the body. boundary is the NUL-terminated value from
 * mp_boundary; limits must not be NULL. err (errlen bytes, may be NULL or 0)
 * receives a line for the log on failure; it holds offsets and counts, never
 * body bytes, and is not meant for the client.
 * Returns RF_OK when the body up to its close delimiter is well formed (or
 * on_part stopped the walk), RF_ERR_BAD_REQUEST for a malformed body or an
 * invalid boundary, RF_ERR_TOO_MANY_PARTS when the body holds more than
 * limits->max_parts parts, RF_ERR_HEADER_TOO_LARGE when a part's header
 * lines exceed limits->max_header_bytes. Parts already delivered before a
 * failure stay valid, but the caller should discard them.
 */
enum rf_result mp_parse(const unsigned char *body, size_t len,
                        const char *boundary, const struct mp_limits *limits,
                        bool (*on_part)(const struct mp_part *part, void *ctx),
                        void *ctx, char *err, size_t errlen);

/*
 * Finds the first part whose name equals name (NUL-terminated, compared
 * byte for byte after the part's escapes are undone). The whole body is
 * checked, not only the bytes up to the match: a body that is malformed or
 * over a limit after the wanted part is still refused, so that what we
 * accept never depends on where the part sits.
 * Returns RF_OK with *out filled (borrowing from body), RF_ERR_NO_IMAGE when
 * the body is well formed but has no such part, or the errors of mp_parse.
 * On failure *out is zeroed. err as for mp_parse.
 */
enum rf_result mp_find(const unsigned char *body, size_t len,
                       const char *boundary, const struct mp_limits *limits,
                       const char *name, struct mp_part *out,
                       char *err, size_t errlen);

/*
 * Tells whether part's name, with its quoted-string escapes undone, equals
 * name (NUL-terminated), byte for byte. False for a part without a name.
 */
bool mp_part_name_eq(const struct mp_part *part, const char *name);

#endif
