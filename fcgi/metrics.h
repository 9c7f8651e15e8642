/*
 * GET /metrics: the scoreboard's counters in the Prometheus text format
 * (version 0.0.4). Any worker renders the figures of the whole service.
 */
#ifndef REFACE_FCGI_METRICS_H
#define REFACE_FCGI_METRICS_H

#include <stddef.h>

#include "fcgi/scoreboard.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Renders every metric into a new NUL-terminated string (the caller frees
 * it); NULL when out of memory. The size is bounded: the label sets are
 * fixed (endpoints, statuses, stages, causes), never taken from clients.
 */
char *metrics_render(const struct scoreboard *sb);

#endif
