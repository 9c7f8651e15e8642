/*
 * The one table that turns a result code into what the client sees: an HTTP
 * status and a short message. Details stay in the log.
 */
#ifndef REFACE_FCGI_STATUS_H
#define REFACE_FCGI_STATUS_H

#include "core/result.h"

struct status_map {
    int http;
    const char *message;
};

/* The status and client message for `r`; never NULL. */
const struct status_map *status_for(enum rf_result r);

/* The reason phrase of an HTTP status ("Not Found"). */
const char *status_reason(int http);

#endif
