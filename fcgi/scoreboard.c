/* The shared scoreboard (fcgi/scoreboard.h). */
#define _DEFAULT_SOURCE
#include "fcgi/scoreboard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

const long long sb_bucket_us[SB_BUCKETS - 1] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

static const int status_codes[SB_STATUS_COUNT - 1] = {
    200, 400, 403, 404, 405, 413, 415, 500, 503,
};

static const char *const status_labels[SB_STATUS_COUNT] = {
    "200", "400", "403", "404", "405", "413", "415", "500", "503", "other",
};

static const char *const endpoint_names[SB_EP_COUNT] = {
    "/predict", "/images", "/health", "/ready", "/metrics", "other",
};

static const char *const stage_names[SB_STAGE_COUNT] = {
    "read", "sniff", "decode", "preprocess", "infer", "reply", "total",
};

static const char *const cause_names[SB_CAUSE_COUNT] = {
    "exit", "signal", "deadline", "recycle", "reload",
};

struct scoreboard *sb_new(void)
{
    void *m = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    /* Anonymous mappings are zero-filled, and zero is every atomic's
     * initial value here. */
    return m == MAP_FAILED ? NULL : m;
}

void sb_free(struct scoreboard *sb)
{
    if (sb != NULL) {
        munmap(sb, sizeof(*sb));
    }
}

long long sb_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void put_chars(_Atomic char *dst, size_t cap, const char *src)
{
    size_t i = 0;

    for (; src != NULL && src[i] != '\0' && i + 1 < cap; i++) {
        atomic_store_explicit(&dst[i], src[i], memory_order_relaxed);
    }
    atomic_store_explicit(&dst[i], '\0', memory_order_relaxed);
}

static void get_chars(const _Atomic char *src, size_t cap, char *out,
                      size_t outsz)
{
    size_t i = 0;

    for (; i + 1 < outsz && i + 1 < cap; i++) {
        out[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
        if (out[i] == '\0') {
            return;
        }
    }
    out[i] = '\0';
}

void sb_set_model(struct scoreboard *sb, unsigned generation,
                  const char *name, const char *sha256)
{
    /* Only the master writes, so the odd/even sequence needs no CAS. */
    atomic_fetch_add(&sb->model_seq, 1);
    put_chars(sb->model_name, SB_NAME_MAX, name);
    put_chars(sb->model_sha256, SB_SHA_MAX, sha256);
    atomic_store(&sb->generation, generation);
    atomic_fetch_add(&sb->model_seq, 1);
}

unsigned sb_get_model(const struct scoreboard *sb, char *name,
                      size_t namesz, char *sha256, size_t shasz)
{
    unsigned seq, gen;

    do {
        seq = atomic_load(&sb->model_seq);
        get_chars(sb->model_name, SB_NAME_MAX, name, namesz);
        get_chars(sb->model_sha256, SB_SHA_MAX, sha256, shasz);
        gen = atomic_load(&sb->generation);
    } while ((seq & 1u) != 0 || seq != atomic_load(&sb->model_seq));
    return gen;
}

void sb_slot_claim(struct scoreboard *sb, int i, pid_t pid, unsigned gen)
{
    struct sb_slot *s = &sb->slot[i];

    atomic_store(&s->ready, false);
    atomic_store(&s->recycling, false);
    atomic_store(&s->busy_since_us, 0);
    atomic_store(&s->served, 0);
    atomic_store(&s->generation, gen);
    put_chars(s->request_id, SB_ID_MAX, "");
    atomic_store(&s->pid, (int)pid);
}

void sb_slot_clear(struct scoreboard *sb, int i)
{
    struct sb_slot *s = &sb->slot[i];

    atomic_store(&s->pid, 0);
    atomic_store(&s->ready, false);
    atomic_store(&s->busy_since_us, 0);
}

void sb_request_begin(struct sb_slot *s, const char *id)
{
    put_chars(s->request_id, SB_ID_MAX, id != NULL ? id : "-");
    /* Release: a master that sees the time also sees the id. */
    atomic_store_explicit(&s->busy_since_us, sb_now_us(),
                          memory_order_release);
}

void sb_request_end(struct sb_slot *s)
{
    atomic_store_explicit(&s->busy_since_us, 0, memory_order_release);
    atomic_fetch_add(&s->served, 1);
}

void sb_slot_request_id(const struct sb_slot *s, char *out, size_t outsz)
{
    get_chars(s->request_id, SB_ID_MAX, out, outsz);
}

static int status_index(int status)
{
    for (int i = 0; i < SB_STATUS_COUNT - 1; i++) {
        if (status_codes[i] == status) {
            return i;
        }
    }
    return SB_STATUS_COUNT - 1;
}

static void observe(struct sb_histogram *h, long long us)
{
    int b = 0;

    while (b < SB_BUCKETS - 1 && us > sb_bucket_us[b]) {
        b++;
    }
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void sb_count_request(struct scoreboard *sb, enum sb_endpoint ep,
                      int status, const long long *stage_us)
{
    atomic_fetch_add(&sb->requests[ep][status_index(status)], 1);
    for (int st = 0; st < SB_STAGE_COUNT; st++) {
        if (stage_us[st] >= 0) {
            observe(&sb->stage[st], stage_us[st]);
        }
    }
}

enum sb_endpoint sb_endpoint_of(const char *path)
{
    for (int ep = 0; ep < SB_EP_OTHER; ep++) {
        if (path != NULL && strcmp(path, endpoint_names[ep]) == 0) {
            return (enum sb_endpoint)ep;
        }
    }
    return SB_EP_OTHER;
}

const char *sb_endpoint_name(enum sb_endpoint ep)
{
    return endpoint_names[ep];
}

const char *sb_status_label(int index)
{
    return status_labels[index];
}

const char *sb_stage_name(enum sb_stage st)
{
    return stage_names[st];
}

const char *sb_cause_name(enum sb_cause c)
{
    return cause_names[c];
}

int sb_workers(const struct scoreboard *sb, int *ready, int *busy)
{
    int live = 0;

    *ready = 0;
    *busy = 0;
    for (int i = 0; i < SB_SLOTS; i++) {
        const struct sb_slot *s = &sb->slot[i];

        if (atomic_load(&s->pid) == 0) {
            continue;
        }
        live++;
        *ready += atomic_load(&s->ready);
        *busy += atomic_load(&s->busy_since_us) != 0;
    }
    return live;
}
