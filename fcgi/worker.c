/*
 * The worker loop over libfcgi's fcgiapp.h (see fcgi/worker.h). Everything
 * here runs in a forked child of the master.
 */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/predict.h"
#include "fcgi/handler.h"
#include "fcgi/status.h"

/*
 * Set by the SIGTERM handler, read between requests. A signal handler can
 * reach nothing else, so this flag is the one piece of file-level mutable
 * state in the worker.
 */
static volatile sig_atomic_t worker_stopping;

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

static void serve_one(const struct handler *h, FCGX_Request *fr)
{
    struct timespec t0;
    struct request rq;
    struct response rs;
    unsigned char *body = NULL;
    const char *id = FCGX_GetParam("REQUEST_ID", fr->envp);
    char uri[256], rid[80];
    long read_us, total_us;
    int bad_body;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&rq, 0, sizeof(rq));
    rq.method = FCGX_GetParam("REQUEST_METHOD", fr->envp);
    rq.path = FCGX_GetParam("DOCUMENT_URI", fr->envp);
    if (rq.path == NULL) {
        rq.path = FCGX_GetParam("SCRIPT_NAME", fr->envp);
    }
    rq.content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
    if (rq.method == NULL) {
        rq.method = "";
    }

    bad_body = read_body(fr, h->cfg->max_body, &body, &rq.body_len,
                         &rq.body_too_large);
    rq.body = body;
    read_us = since_us(&t0);

    if (bad_body) {
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
    escape_for_log(rq.path, uri, sizeof(uri));
    escape_for_log(id != NULL ? id : "-", rid, sizeof(rid));
    rlog(RLOG_INFO, "access",
         "%s %s %d in=%zu out=%zu ms=%.1f id=%s read_us=%ld sniff_us=%ld "
         "decode_us=%ld prep_us=%ld infer_us=%ld result=%s%s%s",
         rq.method[0] ? rq.method : "-", uri, rs.status, rq.body_len,
         rs.body_len, (double)total_us / 1000.0, rid, read_us,
         rs.timing.sniff_us, rs.timing.decode_us, rs.timing.preprocess_us,
         rs.timing.infer_us, rf_result_name(rs.result),
         rs.detail[0] ? " detail=" : "", rs.detail);

    response_release(&rs);
    free(body);
}

void worker_main(const struct config *cfg, int listen_fd,
                 const struct predictor_source *src)
{
    struct predictor_status st;
    struct predictor *pred;
    struct handler h;
    FCGX_Request fr;
    char err[512];

    rlog_setup("worker", (enum rlog_level)rlog_level_parse(cfg->log_level));
    install_signals();

    pred = predictor_new(cfg, src, &st, err, sizeof(err));
    if (pred == NULL) {
        rlog(RLOG_ERROR, "worker", "cannot start: %s", err);
        _exit(WORKER_EXIT_CANNOT_START);
    }
    rlog(RLOG_NOTICE, "model", "loaded name=%s labels=%d ms=%.0f "
         "optimized=%s half=%s card=%s%s%s",
         predictor_card(pred)->name, predictor_card(pred)->n_labels,
         st.load_ms, st.model_optimized ? "yes" : "no",
         st.model_half ? "yes" : "no",
         src->card_found ? "found" : "missing (original Reface defaults)",
         st.note[0] ? " note=" : "", st.note);

    h.cfg = cfg;
    h.predictor = pred;
    if (FCGX_Init() != 0 ||
        FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        rlog(RLOG_ERROR, "worker", "cannot start: libfcgi init failed");
        predictor_free(pred);
        _exit(WORKER_EXIT_CANNOT_START);
    }

    while (!worker_stopping) {
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
        serve_one(&h, &fr);
        FCGX_Finish_r(&fr);
    }

    rlog(RLOG_NOTICE, "worker", "stopping");
    FCGX_Free(&fr, 1);
    predictor_free(pred);
    exit(0);
}
