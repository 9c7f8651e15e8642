/*
 * How long a request waited before a worker took it. nginx stamps the
 * moment it hands the request on (fastcgi_param REQUEST_START $msec, in
 * conf/reface-locations.conf); the request then sits in the listening
 * socket's queue until a worker is free. Past queue_timeout the client
 * has usually given up, or nginx is about to answer 504 itself, so the
 * worker refuses it at once (503) instead of spending a forward on it.
 */
#ifndef REFACE_FCGI_QUEUE_H
#define REFACE_FCGI_QUEUE_H

#include <time.h>

/*
 * Reads `stamp`, nginx's $msec ("1733312345.123": Unix seconds, a dot, up
 * to three digits of milliseconds), and returns in `wait_s` the seconds from
 * it to `now` (CLOCK_REALTIME). Returns 0, or -1 when the stamp is absent
 * or malformed (then nothing is known and nothing is refused). A stamp
 * ahead of `now` (clocks of two hosts that disagree) gives a wait of 0.
 */
int queue_wait(const char *stamp, const struct timespec *now, double *wait_s);

#endif
