/*
 * Reface's settings: defaults, a `key = value` file, and single overrides
 * (the command line uses the same keys). Nothing here opens sockets or
 * models; it only validates and stores values.
 */
#ifndef REFACE_CORE_CONFIG_H
#define REFACE_CORE_CONFIG_H

#include <stddef.h>

#include "core/result.h"

#define CONFIG_PATH_MAX 512

struct config {
    char socket[CONFIG_PATH_MAX]; /* "unix:/path", "host:port", "" = fd 0 */
    int socket_mode;              /* permission bits of a unix socket */
    int backlog;                  /* listen(2) backlog */
    int workers;                  /* 0 = one per online core */
    char model[CONFIG_PATH_MAX];  /* TorchScript file */
    char card[CONFIG_PATH_MAX];   /* model card; "" = model path with .json */
    int threads;                  /* torch intra-op threads per worker */
    size_t max_body;              /* request body bytes */
    long long max_pixels;         /* width * height cap before decoding */
    size_t max_parts;             /* multipart parts per body */
    size_t max_header;            /* bytes of one part's header block */
    double crop;                  /* centred crop, fraction of each side */
    char detector[CONFIG_PATH_MAX]; /* face detector; "" = none */
    double detect_score;          /* keep detections scoring above this */
    double face_margin;           /* added to each side of a face box */
    int detect_retry;             /* no face: look again, image framed */
    char log_level[16];
    char user[64];                /* when started as root: run as this */
    char group[64];               /* "" = the user's primary group */
    /* Process management and operations (README "Operations"). */
    char socket_group[64];        /* chgrp of a unix socket; "" = leave */
    char log_file[CONFIG_PATH_MAX]; /* "" = stderr; SIGUSR1 reopens it */
    double request_timeout;       /* s; master kills a worker past it */
    double queue_timeout;         /* s queued before a worker: 503; 0 off */
    long max_requests;            /* recycle a worker after; 0 = never */
    long max_requests_jitter;     /* plus up to this many, per worker */
    int crash_storm_exits;        /* this many abnormal exits ... */
    double crash_storm_window;    /* ... within this many s: back off */
    double stop_timeout;          /* s SIGTERM waits for requests */
    int sandbox;                  /* workers install the seccomp filter */
};

/* Fills `c` with the documented defaults. */
void config_defaults(struct config *c);

/*
 * Sets one key ("workers", "max_body"...) from its text value. Returns
 * RF_ERR_CONFIG with a reason in `err` for an unknown key or a bad value;
 * `c` is unchanged then.
 */
enum rf_result config_set(struct config *c, const char *key,
                          const char *value, char *err, size_t errlen);

/*
 * Reads a file of `key = value` lines ('#' starts a comment) and applies
 * each with config_set(). Stops at the first bad line and names it in `err`.
 */
enum rf_result config_load_file(struct config *c, const char *path,
                                char *err, size_t errlen);

/* Writes the model card path into `out`: `card` if set, else model's. */
void config_card_path(const struct config *c, char *out, size_t outsz);

/* The text `--help` prints for the keys (shared by flags and the file). */
extern const char config_help[];

#endif
