/* The wait of a request in the socket's queue (see fcgi/queue.h). */
#include "fcgi/queue.h"

#include <stddef.h>

/* Seconds since 1970 that fit comfortably: up to 12 digits. */
#define QUEUE_MAX_SECOND_DIGITS 12

int queue_wait(const char *stamp, const struct timespec *now, double *wait_s)
{
    long long sec = 0;
    long ms = 0;
    int digits = 0;
    const char *p = stamp;
    double start, at;

    if (stamp == NULL) {
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > QUEUE_MAX_SECOND_DIGITS) {
            return -1;
        }
        sec = sec * 10 + (*p - '0');
    }
    if (digits == 0) {
        return -1;
    }
    if (*p == '.') {
        int frac = 0;

        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (++frac > 3) {
                return -1;
            }
            ms = ms * 10 + (*p - '0');
        }
        if (frac == 0) {
            return -1;
        }
        for (; frac < 3; frac++) {
            ms *= 10;
        }
    }
    if (*p != '\0') {
        return -1;
    }
    start = (double)sec + (double)ms / 1000.0;
    at = (double)now->tv_sec + (double)now->tv_nsec / 1e9;
    *wait_s = at > start ? at - start : 0.0;
    return 0;
}
