/*
 * multipart/form-data parser over a body held in memory. The decisions on
 * ambiguous input are listed in multipart.h; this file explains the how.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, linear-time in glibc (two-way search) */
#endif

#include "core/multipart.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* "\r\n--" in front of the boundary. */
#define MP_DELIM_PREFIX 4

/* What the header block of one part told us. */
struct mp_headers {
    bool seen_disposition;
    const char *name;
    size_t name_len;
    const char *filename;
    size_t filename_len;
};

__attribute__((format(printf, 3, 4)))
static void mp_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool mp_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Control characters other than HT never belong in a header line. */
static bool mp_is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* RFC 9110 tchar; done by hand so the locale cannot change the answer. */
static bool mp_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bchars: the characters a boundary may be made of. */
static bool mp_is_bchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

static unsigned char mp_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of n bytes at s with the lower-case lit. */
static bool mp_ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    if (strlen(lit) != n) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (mp_lower((unsigned char)s[i]) != (unsigned char)lit[i]) {
            return false;
        }
    }
    return true;
}

static size_t mp_skip_ows(const char *s, size_t i, size_t n)
{
    while (i < n && mp_is_ows((unsigned char)s[i])) {
        i++;
    }
    return i;
}

static bool mp_boundary_valid(const char *b, size_t n)
{
    size_t i;

    if (n == 0 || n > MP_BOUNDARY_MAX || b[n - 1] == ' ') {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!mp_is_bchar((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

/*
 * Reads one parameter value at s[*i] (a quoted string or a bare run up to
 * ';' or whitespace) and copies its unescaped bytes to out when out is not
 * NULL. Returns false on a malformed value or when out would overflow.
 */
static bool mp_ct_value(const char *s, size_t *i, char *out, size_t outsz,
                        size_t *outlen)
{
    size_t p = *i;
    size_t n = 0;

    if (s[p] == '"') {
        p++;
        while (s[p] != '"') {
            if (s[p] == '\\') {
                p++;
            }
            if (s[p] == '\0' || mp_is_ctl((unsigned char)s[p])) {
                return false;
            }
            if (out != NULL) {
                if (n + 1 >= outsz) {
                    return false;
                }
                out[n] = s[p];
            }
            n++;
            p++;
        }
        p++;
    } else {
        while (s[p] != '\0' && s[p] != ';' && s[p] != '"' &&
               !mp_is_ows((unsigned char)s[p])) {
            if (mp_is_ctl((unsigned char)s[p])) {
                return false;
            }
            if (out != NULL) {
                if (n + 1 >= outsz) {
                    return false;
                }
                out[n] = s[p];
            }
            n++;
            p++;
        }
        if (n == 0) {
            return false;
        }
    }

    *i = p;
    *outlen = n;
    return true;
}

enum rf_result mp_boundary(const char *content_type, char *out, size_t outsz)
{
    static const char media[] = "multipart/form-data";
    const char *s = content_type;
    size_t n, i, name_start, blen = 0;
    bool found = false;

    if (out == NULL || outsz == 0) {
        return RF_ERR_BAD_REQUEST;
    }
    out[0] = '\0';
    if (s == NULL) {
        return RF_ERR_BAD_REQUEST;
    }
    n = strlen(s);

    i = mp_skip_ows(s, 0, n);
    if (n - i < sizeof media - 1 || !mp_ieq(s + i, sizeof media - 1, media)) {
        return RF_ERR_BAD_REQUEST;
    }
    i = mp_skip_ows(s, i + sizeof media - 1, n);

    while (i < n) {
        size_t vlen;
        bool is_boundary;

        if (s[i] != ';') {
            goto bad;
        }
        i = mp_skip_ows(s, i + 1, n);
        if (i == n) {
            break; /* a trailing ';' harms nobody */
        }

        name_start = i;
        while (i < n && mp_is_tchar((unsigned char)s[i])) {
            i++;
        }
        if (i == name_start || s[i] != '=') {
            goto bad;
        }
        is_boundary = mp_ieq(s + name_start, i - name_start, "boundary");
        i++;

        /* Two boundaries would let two readers split the body two ways. */
        if (is_boundary && found) {
            goto bad;
        }
        if (!mp_ct_value(s, &i, is_boundary ? out : NULL, outsz, &vlen)) {
            goto bad;
        }
        if (is_boundary) {
            out[vlen] = '\0';
            blen = vlen;
            found = true;
        }
        i = mp_skip_ows(s, i, n);
    }

    if (found && mp_boundary_valid(out, blen)) {
        return RF_OK;
    }
bad:
    out[0] = '\0';
    return RF_ERR_BAD_REQUEST;
}

/*
 * Reads a token at v[*i]; false when empty. Used for header names, the
 * disposition type and parameter names.
 */
static bool mp_token(const char *v, size_t n, size_t *i, size_t *len)
{
    size_t start = *i;

    while (*i < n && mp_is_tchar((unsigned char)v[*i])) {
        (*i)++;
    }
    *len = *i - start;
    return *len > 0;
}

/*
 * Parses a Content-Disposition value (already free of CTLs and outer
 * whitespace) into h. A type other than form-data leaves h without a name
 * so the part is skipped.
 */
static enum rf_result mp_disposition(const char *v, size_t n,
                                     struct mp_headers *h, const char **why)
{
    size_t i = 0, len;

    if (!mp_token(v, n, &i, &len)) {
        *why = "Content-Disposition without a type";
        return RF_ERR_BAD_REQUEST;
    }
    if (!mp_ieq(v, len, "form-data")) {
        return RF_OK;
    }

    for (;;) {
        const char *pname, *val;
        size_t plen, vlen;

        i = mp_skip_ows(v, i, n);
        if (i == n) {
            break;
        }
        if (v[i] != ';') {
            *why = "Content-Disposition parameters not separated by ';'";
            return RF_ERR_BAD_REQUEST;
        }
        i = mp_skip_ows(v, i + 1, n);
        if (i == n) {
            break;
        }

        pname = v + i;
        if (!mp_token(v, n, &i, &plen) || i == n || v[i] != '=') {
            *why = "Content-Disposition parameter without '='";
            return RF_ERR_BAD_REQUEST;
        }
        i++;

        if (i < n && v[i] == '"') {
            /* Escapes stay in place; mp_part_name_eq undoes them. */
            i++;
            val = v + i;
            while (i < n && v[i] != '"') {
                if (v[i] == '\\') {
                    i++;
                }
                i++;
            }
            if (i >= n) {
                *why = "unterminated quoted string in Content-Disposition";
                return RF_ERR_BAD_REQUEST;
            }
            vlen = (size_t)(v + i - val);
            i++;
        } else {
            val = v + i;
            if (!mp_token(v, n, &i, &vlen)) {
                *why = "Content-Disposition parameter with an invalid value";
                return RF_ERR_BAD_REQUEST;
            }
        }

        if (mp_ieq(pname, plen, "name")) {
            if (h->name != NULL) {
                *why = "Content-Disposition repeats name";
                return RF_ERR_BAD_REQUEST;
            }
            h->name = val;
            h->name_len = vlen;
        } else if (mp_ieq(pname, plen, "filename")) {
            if (h->filename != NULL) {
                *why = "Content-Disposition repeats filename";
                return RF_ERR_BAD_REQUEST;
            }
            h->filename = val;
            h->filename_len = vlen;
        }
    }
    return RF_OK;
}

/* Parses one header line (without its CRLF) into h. */
static enum rf_result mp_header_line(const char *line, size_t n,
                                     struct mp_headers *h, const char **why)
{
    size_t i = 0, name_len, vstart, vend, k;

    if (!mp_token(line, n, &i, &name_len) || i == n || line[i] != ':') {
        /* Also catches obs-fold continuation lines, which RFC 7578 drops. */
        *why = "header line without a name and ':'";
        return RF_ERR_BAD_REQUEST;
    }

    vstart = mp_skip_ows(line, i + 1, n);
    vend = n;
    while (vend > vstart && mp_is_ows((unsigned char)line[vend - 1])) {
        vend--;
    }
    for (k = vstart; k < vend; k++) {
        if (mp_is_ctl((unsigned char)line[k])) {
            *why = "control character in a header value";
            return RF_ERR_BAD_REQUEST;
        }
    }

    if (!mp_ieq(line, name_len, "content-disposition")) {
        return RF_OK;
    }
    if (h->seen_disposition) {
        *why = "Content-Disposition repeated";
        return RF_ERR_BAD_REQUEST;
    }
    h->seen_disposition = true;
    return mp_disposition(line + vstart, vend - vstart, h, why);
}

/*
 * Reads the header block of the part starting at body[start]. On RF_OK,
 * *data_start is where its data begins. The search for the empty line is
 * bounded by the limit, so a huge header costs no more than the limit.
 */
static enum rf_result mp_headers(const unsigned char *body, size_t len,
                                 size_t start, const struct mp_limits *limits,
                                 size_t index, struct mp_headers *h,
                                 size_t *data_start, char *err, size_t errlen)
{
    const unsigned char *block = body + start;
    const unsigned char *end;
    size_t avail = len - start;
    size_t window = avail;
    size_t block_len, pos = 0;

    memset(h, 0, sizeof *h);

    /* No header lines at all: the empty line follows the delimiter line. */
    if (avail >= 2 && block[0] == '\r' && block[1] == '\n') {
        *data_start = start + 2;
        return RF_OK;
    }

    /* The empty line may begin at most max_header_bytes in. */
    if (limits->max_header_bytes <= SIZE_MAX - 2 &&
        window > limits->max_header_bytes + 2) {
        window = limits->max_header_bytes + 2;
    }
    end = memmem(block, window, "\r\n\r\n", 4);
    if (end == NULL) {
        if (window < avail) {
            mp_fail(err, errlen, "part %zu: header block over %zu bytes "
                    "at offset %zu", index, limits->max_header_bytes, start);
            return RF_ERR_HEADER_TOO_LARGE;
        }
        mp_fail(err, errlen, "part %zu: body ends inside the header block "
                "at offset %zu", index, start);
        return RF_ERR_BAD_REQUEST;
    }
    block_len = (size_t)(end - block) + 2; /* the last line keeps its CRLF */
    *data_start = start + block_len + 2;

    while (pos < block_len) {
        /* Every line ends in CR; the block ends in CRLF, so one is found. */
        const unsigned char *cr = memchr(block + pos, '\r', block_len - pos);
        size_t eol = (size_t)(cr - block);
        const char *why = NULL;
        enum rf_result rc;

        if (block[eol + 1] != '\n') {
            mp_fail(err, errlen, "part %zu: bare CR in header at offset %zu",
                    index, start + eol);
            return RF_ERR_BAD_REQUEST;
        }
        rc = mp_header_line((const char *)block + pos, eol - pos, h, &why);
        if (rc != RF_OK) {
            mp_fail(err, errlen, "part %zu: %s at offset %zu", index, why,
                    start + pos);
            return rc;
        }
        pos = eol + 2;
    }
    return RF_OK;
}

/*
 * Checks what follows "--boundary" at body[*pos]: "--" closes the body,
 * otherwise optional padding and CRLF open the next part (*pos moves past
 * the CRLF).
 */
static enum rf_result mp_delimiter_tail(const unsigned char *body, size_t len,
                                        size_t *pos, bool *closed,
                                        char *err, size_t errlen)
{
    size_t p = *pos;

    if (len - p >= 2 && body[p] == '-' && body[p + 1] == '-') {
        *closed = true;
        *pos = len; /* the epilogue is ignored */
        return RF_OK;
    }
    while (p < len && mp_is_ows(body[p])) {
        p++;
    }
    if (len - p >= 2 && body[p] == '\r' && body[p + 1] == '\n') {
        *closed = false;
        *pos = p + 2;
        return RF_OK;
    }
    if (p == len) {
        mp_fail(err, errlen, "body ends after a delimiter at offset %zu, "
                "without a close delimiter", *pos);
    } else {
        mp_fail(err, errlen, "delimiter at offset %zu is followed by "
                "something other than padding and CRLF", *pos);
    }
    return RF_ERR_BAD_REQUEST;
}

enum rf_result mp_parse(const unsigned char *body, size_t len,
                        const char *boundary, const struct mp_limits *limits,
                        bool (*on_part)(const struct mp_part *part, void *ctx),
                        void *ctx, char *err, size_t errlen)
{
    char delim[MP_DELIM_PREFIX + MP_BOUNDARY_MAX];
    size_t blen, dlen, pos, count = 0;
    const unsigned char *hit;
    bool closed = false;
    enum rf_result rc;

    assert(limits != NULL && on_part != NULL);

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (boundary == NULL ||
        !mp_boundary_valid(boundary, strnlen(boundary, MP_BOUNDARY_MAX + 1))) {
        mp_fail(err, errlen, "invalid boundary");
        return RF_ERR_BAD_REQUEST;
    }
    if (body == NULL || len == 0) {
        mp_fail(err, errlen, "empty body");
        return RF_ERR_BAD_REQUEST;
    }
    blen = strlen(boundary);
    memcpy(delim, "\r\n--", MP_DELIM_PREFIX);
    memcpy(delim + MP_DELIM_PREFIX, boundary, blen);
    dlen = MP_DELIM_PREFIX + blen;

    /* The first delimiter needs no CRLF before it when it opens the body. */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;
    } else {
        hit = memmem(body, len, delim, dlen);
        if (hit == NULL) {
            mp_fail(err, errlen, "no delimiter line in %zu bytes of body",
                    len);
            return RF_ERR_BAD_REQUEST;
        }
        pos = (size_t)(hit - body) + dlen;
    }
    rc = mp_delimiter_tail(body, len, &pos, &closed, err, errlen);
    if (rc != RF_OK) {
        return rc;
    }

    while (!closed) {
        struct mp_headers h;
        struct mp_part part;
        size_t data_start;

        if (count == limits->max_parts) {
            mp_fail(err, errlen, "more than %zu parts", limits->max_parts);
            return RF_ERR_TOO_MANY_PARTS;
        }

        rc = mp_headers(body, len, pos, limits, count, &h, &data_start,
                        err, errlen);
        if (rc != RF_OK) {
            return rc;
        }

        /*
         * The search starts where the data starts and the next one starts
         * after this match, so no byte is scanned twice.
         */
        hit = memmem(body + data_start, len - data_start, delim, dlen);
        if (hit == NULL) {
            mp_fail(err, errlen, "part %zu starting at offset %zu is not "
                    "closed by a delimiter", count, data_start);
            return RF_ERR_BAD_REQUEST;
        }
        pos = (size_t)(hit - body) + dlen;
        rc = mp_delimiter_tail(body, len, &pos, &closed, err, errlen);
        if (rc != RF_OK) {
            return rc;
        }

        part.name = h.name;
        part.name_len = h.name_len;
        part.filename = h.filename;
        part.filename_len = h.filename_len;
        part.data = body + data_start;
        part.len = (size_t)(hit - part.data);
        part.index = count;
        count++;
        if (part.name != NULL && !on_part(&part, ctx)) {
            return RF_OK;
        }
    }
    return RF_OK;
}

bool mp_part_name_eq(const struct mp_part *part, const char *name)
{
    size_t i = 0, j = 0;

    if (part == NULL || part->name == NULL || name == NULL) {
        return false;
    }
    while (i < part->name_len) {
        char c = part->name[i++];

        /* The parser guarantees a character after every backslash. */
        if (c == '\\' && i < part->name_len) {
            c = part->name[i++];
        }
        if (name[j] == '\0' || name[j] != c) {
            return false;
        }
        j++;
    }
    return name[j] == '\0';
}

struct mp_find_state {
    const char *name;
    struct mp_part *out;
    bool found;
};

/* Keeps the first match and lets the walk go on, to check the whole body. */
static bool mp_find_part(const struct mp_part *part, void *ctx)
{
    struct mp_find_state *st = ctx;

    if (!st->found && mp_part_name_eq(part, st->name)) {
        *st->out = *part;
        st->found = true;
    }
    return true;
}

enum rf_result mp_find(const unsigned char *body, size_t len,
                       const char *boundary, const struct mp_limits *limits,
                       const char *name, struct mp_part *out,
                       char *err, size_t errlen)
{
    struct mp_find_state st = { name, out, false };
    enum rf_result rc;

    assert(name != NULL && out != NULL);
    memset(out, 0, sizeof *out);

    rc = mp_parse(body, len, boundary, limits, mp_find_part, &st,
                  err, errlen);
    if (rc != RF_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (!st.found) {
        mp_fail(err, errlen, "no part named \"%s\"", name);
        return RF_ERR_NO_IMAGE;
    }
    return RF_OK;
}
