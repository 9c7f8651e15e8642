/* Prometheus text rendering of the scoreboard (fcgi/metrics.h). */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/metrics.h"

#include <stdio.h>
#include <stdlib.h>

static unsigned long long load(const atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void head(FILE *f, const char *name, const char *type,
                 const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void requests(FILE *f, const struct scoreboard *sb)
{
    head(f, "reface_requests_total", "counter",
         "Requests answered by the workers, by endpoint and HTTP status.");
    for (int ep = 0; ep < SB_EP_COUNT; ep++) {
        for (int st = 0; st < SB_STATUS_COUNT; st++) {
            unsigned long long n = load(&sb->requests[ep][st]);

            /* A series appears once it has counted something. */
            if (n > 0) {
                fprintf(f, "reface_requests_total{endpoint=\"%s\","
                        "status=\"%s\"} %llu\n",
                        sb_endpoint_name((enum sb_endpoint)ep),
                        sb_status_label(st), n);
            }
        }
    }
}

static void stages(FILE *f, const struct scoreboard *sb)
{
    head(f, "reface_stage_seconds", "histogram",
         "Time per request stage; pipeline stages only for answered "
         "predictions.");
    for (int st = 0; st < SB_STAGE_COUNT; st++) {
        const struct sb_histogram *h = &sb->stage[st];
        const char *name = sb_stage_name((enum sb_stage)st);
        unsigned long long cumulative = 0;

        for (int b = 0; b < SB_BUCKETS; b++) {
            cumulative += load(&h->bucket[b]);
            if (b < SB_BUCKETS - 1) {
                fprintf(f, "reface_stage_seconds_bucket{stage=\"%s\","
                        "le=\"%g\"} %llu\n", name,
                        (double)sb_bucket_us[b] / 1e6, cumulative);
            } else {
                fprintf(f, "reface_stage_seconds_bucket{stage=\"%s\","
                        "le=\"+Inf\"} %llu\n", name, cumulative);
            }
        }
        fprintf(f, "reface_stage_seconds_sum{stage=\"%s\"} %.6f\n", name,
                (double)load(&h->sum_us) / 1e6);
        /* The count is the +Inf bucket, so the two always agree. */
        fprintf(f, "reface_stage_seconds_count{stage=\"%s\"} %llu\n", name,
                cumulative);
    }
}

static void workers(FILE *f, const struct scoreboard *sb)
{
    int ready, busy, live = sb_workers(sb, &ready, &busy);

    head(f, "reface_requests_in_flight", "gauge",
         "Requests a worker is serving now (this one included).");
    fprintf(f, "reface_requests_in_flight %d\n", busy);
    head(f, "reface_workers", "gauge", "Worker processes alive.");
    fprintf(f, "reface_workers %d\n", live);
    head(f, "reface_workers_ready", "gauge",
         "Workers with the model loaded, accepting requests.");
    fprintf(f, "reface_workers_ready %d\n", ready);
    head(f, "reface_workers_configured", "gauge",
         "Workers the master keeps running.");
    fprintf(f, "reface_workers_configured %d\n",
            atomic_load(&sb->pool_size));

    head(f, "reface_worker_restarts_total", "counter",
         "Workers replaced by the master, by cause.");
    for (int c = 0; c < SB_CAUSE_COUNT; c++) {
        fprintf(f, "reface_worker_restarts_total{cause=\"%s\"} %llu\n",
                sb_cause_name((enum sb_cause)c), load(&sb->restarts[c]));
    }
    head(f, "reface_crash_backoffs_total", "counter",
         "Times the master delayed respawns after a crash storm.");
    fprintf(f, "reface_crash_backoffs_total %llu\n", load(&sb->backoffs));
}

static void model(FILE *f, const struct scoreboard *sb)
{
    char name[SB_NAME_MAX], sha[SB_SHA_MAX];
    unsigned gen = sb_get_model(sb, name, sizeof(name), sha, sizeof(sha));

    head(f, "reface_model_info", "gauge",
         "The model served now (after a reload: once every worker runs "
         "it), always 1.");
    /* The master cleans the name of quotes and backslashes (master.c). */
    fprintf(f, "reface_model_info{name=\"%s\",sha256=\"%s\","
            "generation=\"%u\"} 1\n", name, sha, gen);
    head(f, "reface_model_load_seconds", "gauge",
         "Model load, optimisation and check in the latest worker started.");
    fprintf(f, "reface_model_load_seconds %.3f\n",
            (double)atomic_load(&sb->model_load_us) / 1e6);
}

char *metrics_render(const struct scoreboard *sb)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL) {
        return NULL;
    }
    requests(f, sb);
    stages(f, sb);
    workers(f, sb);
    model(f, sb);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
