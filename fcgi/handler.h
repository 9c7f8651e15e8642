/*
 * Request routing and the API: from a request already read off the wire to
 * a response ready to be written. Nothing here touches a socket, so the
 * whole handler can be driven by tests and fuzzers without libfcgi.
 */
#ifndef REFACE_FCGI_HANDLER_H
#define REFACE_FCGI_HANDLER_H

#include <stddef.h>

#include "core/config.h"
#include "core/predict.h"
#include "fcgi/scoreboard.h"

/* What the front end read: all borrowed, valid during handler_serve(). */
struct request {
    const char *method;        /* REQUEST_METHOD */
    const char *path;          /* DOCUMENT_URI, without the query */
    const char *content_type;  /* CONTENT_TYPE; NULL if absent */
    const unsigned char *body;
    size_t body_len;
    int body_too_large;        /* the front end refused to read the body */
    const char *query;         /* QUERY_STRING; NULL if absent */
};

#define RESPONSE_HEADERS_MAX 2048

struct response {
    int status;
    const char *content_type;          /* constant string */
    char headers[RESPONSE_HEADERS_MAX];/* extra "Name: value\r\n" lines */
    size_t headers_len;
    const unsigned char *body;         /* borrowed from `owned` or request */
    size_t body_len;
    char *owned;                       /* freed by response_release() */
    /* For the access log. */
    enum rf_result result;
    char detail[256];
    struct predict_timing timing;
};

struct handler {
    const struct config *cfg;  /* borrowed */
    struct predictor *predictor; /* borrowed */
    /* Shared counters for /metrics and /ready; NULL: both answer 503. */
    const struct scoreboard *sb;
};

/*
 * Serves one request into `rs` (which the caller releases with
 * response_release()). Every outcome, including errors, is a complete
 * response; the return value is the HTTP status.
 */
int handler_serve(const struct handler *h, const struct request *rq,
                  struct response *rs);

/* Frees what the response owns; safe to call twice. */
void response_release(struct response *rs);

#endif
