/*
 * The scoreboard: one shared memory region, mapped by the master before it
 * forks, where each worker publishes its state (its slot) and adds to the
 * service-wide counters. The master reads the slots to enforce deadlines
 * and run reloads; any worker reads everything to answer /metrics and
 * /ready. Every field is a C11 atomic, so no lock is held across a fork or
 * a SIGKILL.
 */
#ifndef REFACE_FCGI_SCOREBOARD_H
#define REFACE_FCGI_SCOREBOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Slots: the largest pool (256) plus the extra worker of a reload. */
#define SB_SLOTS 257
#define SB_ID_MAX 64
#define SB_NAME_MAX 64
#define SB_SHA_MAX 65

enum sb_endpoint {
    SB_EP_PREDICT,
    SB_EP_IMAGES,
    SB_EP_HEALTH,
    SB_EP_READY,
    SB_EP_METRICS,
    SB_EP_OTHER,
    SB_EP_COUNT
};

/* The HTTP statuses the workers give; anything else counts as "other". */
#define SB_STATUS_COUNT 10

enum sb_stage {
    SB_STAGE_READ,
    SB_STAGE_SNIFF,
    SB_STAGE_DECODE,
    SB_STAGE_PREPROCESS,
    SB_STAGE_INFER,
    SB_STAGE_REPLY,
    SB_STAGE_TOTAL,
    SB_STAGE_COUNT
};

/* Why the master replaced a worker. */
enum sb_cause {
    SB_CAUSE_EXIT,      /* exited on its own, unexpectedly */
    SB_CAUSE_SIGNAL,    /* killed by a signal it did not get from us */
    SB_CAUSE_DEADLINE,  /* killed by the master: request over the deadline */
    SB_CAUSE_RECYCLE,   /* left after max_requests */
    SB_CAUSE_RELOAD,    /* retired by a SIGHUP rolling reload */
    SB_CAUSE_COUNT
};

/* Histogram bucket bounds, microseconds; one more bucket for +Inf. */
#define SB_BUCKETS 14
extern const long long sb_bucket_us[SB_BUCKETS - 1];

struct sb_slot {
    atomic_int pid;                  /* 0: empty */
    atomic_uint generation;          /* the model generation it runs */
    atomic_bool ready;               /* model loaded, accepting */
    atomic_bool recycling;           /* leaving after max_requests */
    atomic_llong busy_since_us;      /* monotonic; 0 when idle */
    atomic_ullong served;            /* requests completed */
    _Atomic char request_id[SB_ID_MAX]; /* of the request in hand */
};

struct sb_histogram {
    atomic_ullong bucket[SB_BUCKETS]; /* not cumulative */
    atomic_ullong count;
    atomic_ullong sum_us;
};

struct scoreboard {
    struct sb_slot slot[SB_SLOTS];
    atomic_ullong requests[SB_EP_COUNT][SB_STATUS_COUNT];
    struct sb_histogram stage[SB_STAGE_COUNT];
    atomic_ullong restarts[SB_CAUSE_COUNT];
    atomic_ullong backoffs;          /* crash-storm backoffs started */
    atomic_llong model_load_us;      /* the latest worker's model load */
    atomic_int pool_size;            /* workers the master keeps */
    /* The model now served; a sequence lock guards the two strings. */
    atomic_uint model_seq;           /* odd while the master writes */
    atomic_uint generation;
    _Atomic char model_name[SB_NAME_MAX];
    _Atomic char model_sha256[SB_SHA_MAX];
};

/*
 * Maps a zeroed scoreboard shared with every child forked afterwards.
 * Returns NULL (errno set) if mmap fails. Unmap with sb_free() (NULL ok).
 */
struct scoreboard *sb_new(void);
void sb_free(struct scoreboard *sb);

/* Monotonic clock in microseconds, the scoreboard's time base. */
long long sb_now_us(void);

/* Master: publishes the model now served (name and sha256 hex). */
void sb_set_model(struct scoreboard *sb, unsigned generation,
                  const char *name, const char *sha256);

/* Anyone: copies the model's strings out; returns its generation. */
unsigned sb_get_model(const struct scoreboard *sb, char *name,
                      size_t namesz, char *sha256, size_t shasz);

/* Master: a fresh slot for a worker just forked / a slot emptied. */
void sb_slot_claim(struct scoreboard *sb, int i, pid_t pid, unsigned gen);
void sb_slot_clear(struct scoreboard *sb, int i);

/* Worker: a request starts (id from nginx, may be NULL) or ends. */
void sb_request_begin(struct sb_slot *s, const char *id);
void sb_request_end(struct sb_slot *s);

/* Copies a slot's request id (possibly torn if it changes meanwhile). */
void sb_slot_request_id(const struct sb_slot *s, char *out, size_t outsz);

/* Counts one answered request; `stage_us` has SB_STAGE_COUNT entries,
 * negative for a stage the request did not go through. */
void sb_count_request(struct scoreboard *sb, enum sb_endpoint ep,
                      int status, const long long *stage_us);

/* The endpoint of a path, and the status code of a status index. */
enum sb_endpoint sb_endpoint_of(const char *path);
const char *sb_endpoint_name(enum sb_endpoint ep);
const char *sb_status_label(int index);
const char *sb_stage_name(enum sb_stage st);
const char *sb_cause_name(enum sb_cause c);

/* Live and ready workers right now, and requests in hand. */
int sb_workers(const struct scoreboard *sb, int *ready, int *busy);

#endif
