/*
 * Result codes shared by every module of Reface. Actions return one of these;
 * the detail for the log travels in a caller-supplied error buffer, and the
 * single table in fcgi/status.c maps each code to an HTTP status and message.
 */
#ifndef REFACE_CORE_RESULT_H
#define REFACE_CORE_RESULT_H

enum rf_result {
    RF_OK = 0,
    RF_ERR_NOMEM,           /* an allocation failed */
    RF_ERR_BAD_REQUEST,     /* malformed multipart, wrong Content-Type */
    RF_ERR_NO_IMAGE,        /* well-formed body without an "image" part */
    RF_ERR_BODY_TOO_LARGE,  /* body over the configured byte limit */
    RF_ERR_TOO_MANY_PARTS,  /* multipart part count over the limit */
    RF_ERR_HEADER_TOO_LARGE,/* a part header over the limit */
    RF_ERR_UNSUPPORTED,     /* bytes are not an image type we accept */
    RF_ERR_TOO_MANY_PIXELS, /* image dimensions over the pixel cap */
    RF_ERR_DECODE,          /* an accepted type that fails to decode */
    RF_ERR_MODEL,           /* the model failed to load or to run */
    RF_ERR_CONTRACT,        /* the model breaks the documented contract */
    RF_ERR_IO,              /* a system call failed */
    RF_ERR_CONFIG,          /* bad configuration value or file */
    RF_ERR_BAD_QUERY,       /* a query parameter with a bad value */
    RF_ERR_QUEUE_TIMEOUT,   /* waited past queue_timeout for a worker */
    RF_ERR__COUNT
};

/* Returns a short constant name for a code ("decode_failed"), for logs. */
const char *rf_result_name(enum rf_result r);

#endif
