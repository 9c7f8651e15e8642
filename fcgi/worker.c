/*
 * The worker loop over libfcgi's fcgiapp.h (see fcgi/worker.h). Everything
 * here runs in a forked child of the master.
 */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/predict.h"
#include "core/reply.h"
#include "fcgi/handler.h"
#include "fcgi/listen.h"
#include "fcgi/queue.h"
#include "fcgi/sandbox.h"
#include "fcgi/status.h"

/*
 * Set by the SIGTERM and SIGUSR1 handlers, read between requests. A signal
 * handler can reach nothing else, so these flags are the only file-level
 * mutable state in the worker.
 */
static volatile sig_atomic_t worker_stopping;
static volatile sig_atomic_t worker_reopen_log;

static void on_sigusr1(int sig)
{
    (void)sig;
    worker_reopen_log = 1;
}

static void on_sigterm(int sig)
{
    (void)sig;
    worker_stopping = 1;
    /* Makes libfcgi's accept() give up instead of retrying on EINTR. */
    FCGX_ShutdownPending();
}

static void install_signals(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked accept() must return so we can stop. */
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sigusr1;
    sigaction(SIGUSR1, &sa, NULL);

    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    /* nginx may close first; a write then fails with EPIPE instead. */
    sigaction(SIGPIPE, &sa, NULL);

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static long since_us(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000000L +
           (now.tv_nsec - t0->tv_nsec) / 1000L;
}

/*
 * Reads the body into a fresh buffer of CONTENT_LENGTH bytes. A body over
 * the limit is not stored: it is read and dropped so that nginx, which
 * sends it whole, does not see a reset. Returns 0, or -1 if the stream
 * ended before CONTENT_LENGTH bytes.
 */
static int read_body(FCGX_Request *rq, size_t max_body, unsigned char **body,
                     size_t *len, int *too_large)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
    unsigned long long want = 0;
    char *end;

    *body = NULL;
    *len = 0;
    *too_large = 0;
    if (cl != NULL && *cl != '\0') {
        errno = 0;
        want = strtoull(cl, &end, 10);
        if (errno != 0 || *end != '\0') {
            return -1;
        }
    }
    if (want == 0) {
        return 0;
    }

    if (want > max_body) {
        char sink[16384];
        unsigned long long left = want;

        *too_large = 1;
        while (left > 0) {
            int chunk = left < sizeof(sink) ? (int)left : (int)sizeof(sink);
            int got = FCGX_GetStr(sink, chunk, rq->in);

            if (got <= 0) {
                break;
            }
            left -= (unsigned long long)got;
        }
        return 0;
    }

    *body = malloc((size_t)want);
    if (*body == NULL) {
        return -1;
    }
    *len = (size_t)FCGX_GetStr((char *)*body, (int)want, rq->in);
    return *len == want ? 0 : -1;
}

static void write_response(FCGX_Request *rq, const struct request *in,
                           const struct response *rs)
{
    char head[RESPONSE_HEADERS_MAX + 256];
    int n;

    /* libfcgi's own printf lacks %zu; format the head here instead. */
    n = snprintf(head, sizeof(head),
                 "Status: %d %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s\r\n",
                 rs->status, status_reason(rs->status), rs->content_type,
                 rs->body_len, rs->headers);
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return;
    }
    FCGX_PutStr(head, n, rq->out);
    if (rs->body_len > 0 && strcmp(in->method, "HEAD") != 0) {
        FCGX_PutStr((const char *)rs->body, (int)rs->body_len, rq->out);
    }
}

/* Copies client text into `out`, escaping anything not printable ASCII. */
static void escape_for_log(const char *in, char *out, size_t outsz)
{
    size_t o = 0;

    for (; in != NULL && *in != '\0' && o + 5 < outsz; in++) {
        unsigned char c = (unsigned char)*in;

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/*
 * SIGTERM and SIGUSR1 are blocked while a request is served, so that no
 * read or write of it is cut short by EINTR; they are taken between
 * requests and interrupt an idle accept().
 */
static void block_signals(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigprocmask(how, &set, NULL);
}

/* Adds a served request to the scoreboard's counters. */
static void count_request(struct scoreboard *sb, const struct request *rq,
                          const struct response *rs, long read_us,
                          long reply_us, long total_us)
{
    enum sb_endpoint ep = sb_endpoint_of(rq->path);
    long long us[SB_STAGE_COUNT];
    int pipeline = (ep == SB_EP_PREDICT || ep == SB_EP_IMAGES) &&
                   rs->status == 200;

    us[SB_STAGE_READ] = read_us;
    us[SB_STAGE_SNIFF] = pipeline ? rs->timing.sniff_us : -1;
    us[SB_STAGE_DECODE] = pipeline ? rs->timing.decode_us : -1;
    us[SB_STAGE_PREPROCESS] = pipeline ? rs->timing.preprocess_us : -1;
    us[SB_STAGE_INFER] = pipeline ? rs->timing.infer_us : -1;
    us[SB_STAGE_REPLY] = reply_us;
    us[SB_STAGE_TOTAL] = total_us;
    sb_count_request(sb, ep, rs->status, us);
}

/*
 * True, with the 503 in `rs`, when nginx's stamp says the request waited
 * longer than queue_timeout for a worker. Nothing of it is read or
 * decoded: under a backlog, the worker's time goes to requests whose
 * clients are still waiting.
 */
static int refuse_stale(const struct handler *h, FCGX_Request *fr,
                        struct response *rs)
{
    const struct status_map *m = status_for(RF_ERR_QUEUE_TIMEOUT);
    struct timespec now;
    double waited;

    clock_gettime(CLOCK_REALTIME, &now);
    if (h->cfg->queue_timeout <= 0.0 ||
        queue_wait(FCGX_GetParam("REQUEST_START", fr->envp), &now,
                   &waited) != 0 ||
        waited <= h->cfg->queue_timeout) {
        return 0;
    }
    memset(rs, 0, sizeof(*rs));
    rs->status = m->http;
    rs->content_type = "application/json";
    rs->owned = reply_error(m->message);
    rs->body = (const unsigned char *)(rs->owned != NULL
                                           ? rs->owned
                                           : "{\"error\":\"Server busy\"}");
    rs->body_len = strlen((const char *)rs->body);
    rs->headers_len = (size_t)snprintf(rs->headers, sizeof(rs->headers),
                                       "Retry-After: 1\r\n");
    rs->result = RF_ERR_QUEUE_TIMEOUT;
    snprintf(rs->detail, sizeof(rs->detail), "waited %.1f s in the queue, "
             "over queue_timeout %.1f s", waited, h->cfg->queue_timeout);
    return 1;
}

static void serve_one(const struct handler *h, FCGX_Request *fr,
                      struct scoreboard *sb)
{
    struct timespec t0;
    struct request rq;
    struct response rs;
    unsigned char *body = NULL;
    const char *id = FCGX_GetParam("REQUEST_ID", fr->envp);
    char uri[256], rid[80];
    long read_us, total_us, reply_us;
    int bad_body = 0, stale;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&rq, 0, sizeof(rq));
    rq.method = FCGX_GetParam("REQUEST_METHOD", fr->envp);
    rq.path = FCGX_GetParam("DOCUMENT_URI", fr->envp);
    if (rq.path == NULL) {
        rq.path = FCGX_GetParam("SCRIPT_NAME", fr->envp);
    }
    rq.content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
    rq.query = FCGX_GetParam("QUERY_STRING", fr->envp);
    if (rq.method == NULL) {
        rq.method = "";
    }

    memset(&rs, 0, sizeof(rs));
    stale = refuse_stale(h, fr, &rs);
    if (!stale) {
        bad_body = read_body(fr, h->cfg->max_body, &body, &rq.body_len,
                             &rq.body_too_large);
    }
    rq.body = body;
    read_us = since_us(&t0);

    if (stale) {
        /* Answered by refuse_stale(). */
    } else if (bad_body) {
        memset(&rs, 0, sizeof(rs));
        rs.status = 400;
        rs.content_type = "application/json";
        rs.body = (const unsigned char *)"{\"error\":\"Incomplete request "
                                         "body\"}";
        rs.body_len = strlen((const char *)rs.body);
        rs.result = RF_ERR_BAD_REQUEST;
        snprintf(rs.detail, sizeof(rs.detail), "body shorter than "
                 "CONTENT_LENGTH or unreadable");
    } else {
        handler_serve(h, &rq, &rs);
    }
    write_response(fr, &rq, &rs);

    total_us = since_us(&t0);
    /* Reply: all but reading and the pipeline (routing, multipart, JSON,
     * handing the bytes to libfcgi). */
    reply_us = total_us - read_us - rs.timing.sniff_us -
               rs.timing.decode_us - rs.timing.preprocess_us -
               rs.timing.infer_us;
    if (sb != NULL) {
        count_request(sb, &rq, &rs, read_us, reply_us, total_us);
    }
    escape_for_log(FCGX_GetParam("REQUEST_URI", fr->envp) != NULL
                       ? FCGX_GetParam("REQUEST_URI", fr->envp) : rq.path,
                   uri, sizeof(uri));
    escape_for_log(id != NULL ? id : "-", rid, sizeof(rid));
    rlog(RLOG_INFO, "access",
         "%s %s %d in=%zu out=%zu ms=%.1f id=%s read_us=%ld sniff_us=%ld "
         "decode_us=%ld prep_us=%ld infer_us=%ld reply_us=%ld result=%s%s%s",
         rq.method[0] ? rq.method : "-", uri, rs.status, rq.body_len,
         rs.body_len, (double)total_us / 1000.0, rid, read_us,
         rs.timing.sniff_us, rs.timing.decode_us, rs.timing.preprocess_us,
         rs.timing.infer_us, reply_us, rf_result_name(rs.result),
         rs.detail[0] ? " detail=" : "", rs.detail);

    response_release(&rs);
    free(body);
}

/* This worker's request limit: max_requests plus its share of jitter. */
static long request_limit(const struct config *cfg)
{
    unsigned seed;

    if (cfg->max_requests <= 0) {
        return 0;
    }
    if (cfg->max_requests_jitter <= 0) {
        return cfg->max_requests;
    }
    /* Workers forked in the same second differ by pid. */
    seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    return cfg->max_requests +
           (long)((unsigned long)rand_r(&seed) %
                  ((unsigned long)cfg->max_requests_jitter + 1));
}

/*
 * Returns 1 if the worker must leave instead: in the sandbox it may not
 * open the file again, so it exits between requests and its replacement
 * inherits the file the master has just reopened.
 */
static int reopen_log(const struct config *cfg)
{
    worker_reopen_log = 0;
    if (cfg->log_file[0] == '\0') {
        return 0;
    }
    if (cfg->sandbox) {
        return 1;
    }
    if (rlog_reopen(cfg->log_file) != 0) {
        rlog_errno(RLOG_ERROR, "worker", errno, "cannot reopen log_file %s",
                   cfg->log_file);
    }
    return 0;
}

void worker_main(const struct config *cfg, int listen_fd,
                 const struct predictor_source *src, struct scoreboard *sb,
                 int slot)
{
    struct predictor_status st;
    struct predictor *pred;
    struct handler h;
    FCGX_Request fr;
    struct sb_slot *me = &sb->slot[slot];
    long limit, served = 0;
    char err[512];

    rlog_setup("worker", (enum rlog_level)rlog_level_parse(cfg->log_level));
    install_signals();

    pred = predictor_new(cfg, src, &st, err, sizeof(err));
    if (pred == NULL) {
        rlog(RLOG_ERROR, "worker", "cannot start: %s", err);
        _exit(WORKER_EXIT_CANNOT_START);
    }
    rlog(RLOG_NOTICE, "model", "loaded name=%s labels=%d ms=%.0f "
         "optimized=%s half=%s detector=%s card=%s%s%s",
         predictor_card(pred)->name, predictor_card(pred)->n_labels,
         st.load_ms, st.model_optimized ? "yes" : "no",
         st.model_half ? "yes" : "no",
         !st.detector ? "none" : st.detector_optimized ? "optimized" : "yes",
         src->card_found ? "found" : "missing (original Reface defaults)",
         st.note[0] ? " note=" : "", st.note);

    h.cfg = cfg;
    h.predictor = pred;
    h.sb = sb;
    if (FCGX_Init() != 0 ||
        FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        rlog(RLOG_ERROR, "worker", "cannot start: libfcgi init failed");
        predictor_free(pred);
        _exit(WORKER_EXIT_CANNOT_START);
    }
    if (listen_start(listen_fd, cfg->backlog) != 0) {
        rlog_errno(RLOG_ERROR, "worker", errno, "cannot start: listen");
        predictor_free(pred);
        _exit(WORKER_EXIT_CANNOT_START);
    }
    if (cfg->sandbox && sandbox_enter(err, sizeof(err)) != RF_OK) {
        rlog(RLOG_ERROR, "worker", "cannot start: sandbox: %s", err);
        predictor_free(pred);
        _exit(WORKER_EXIT_CANNOT_START);
    }
    atomic_store(&sb->model_load_us, (long long)(st.load_ms * 1000.0));
    atomic_store(&me->ready, true);
    limit = request_limit(cfg);

    while (!worker_stopping) {
        if (worker_reopen_log && reopen_log(cfg)) {
            rlog(RLOG_NOTICE, "worker", "SIGUSR1: leaving so that a new "
                 "worker writes to the reopened log_file");
            atomic_store(&me->recycling, true);
            break;
        }
        if (FCGX_Accept_r(&fr) < 0) {
            if (worker_stopping) {
                break;
            }
            if (errno == EINTR) {
                continue;
            }
            rlog_errno(RLOG_WARN, "worker", errno, "accept failed");
            /* Avoid a hot loop if the socket is broken for good. */
            nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
            continue;
        }
        block_signals(SIG_BLOCK);
        /* libfcgi accepts without SOCK_CLOEXEC; nothing may inherit it. */
        fcntl(fr.ipcFd, F_SETFD, FD_CLOEXEC);
        sb_request_begin(me, FCGX_GetParam("REQUEST_ID", fr.envp));
        serve_one(&h, &fr, sb);
        FCGX_Finish_r(&fr);
        sb_request_end(me);
        block_signals(SIG_UNBLOCK);
        served++;
        if (limit > 0 && served >= limit) {
            rlog(RLOG_NOTICE, "worker", "recycling after %ld requests",
                 served);
            atomic_store(&me->recycling, true);
            break;
        }
    }

    rlog(RLOG_NOTICE, "worker", "stopping");
    atomic_store(&me->ready, false);
    FCGX_Free(&fr, 1);
    predictor_free(pred);
    exit(0);
}
