/* Routes, the /predict and /images API, and JSON errors (fcgi/handler.h). */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/multipart.h"
#include "core/reply.h"
#include "core/sniff.h"
#include "fcgi/metrics.h"
#include "fcgi/status.h"

/* Used when even the error JSON cannot be built (out of memory). */
static const char fallback_error[] = "{\"error\":\"Server busy, retry later\"}";

static void set_json(struct response *rs, int status, char *json)
{
    rs->status = status;
    rs->content_type = "application/json";
    if (json == NULL) {
        rs->status = 503;
        rs->body = (const unsigned char *)fallback_error;
        rs->body_len = sizeof(fallback_error) - 1;
        return;
    }
    free(rs->owned);
    rs->owned = json;
    rs->body = (const unsigned char *)json;
    rs->body_len = strlen(json);
}

static void set_error(struct response *rs, int status, const char *message)
{
    set_json(rs, status, reply_error(message));
}

static void set_result_error(struct response *rs, enum rf_result r)
{
    const struct status_map *m = status_for(r);

    rs->result = r;
    set_error(rs, m->http, m->message);
}

/* Appends one header line; values never hold CR or LF (ours only). */
static void add_header(struct response *rs, const char *name,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_header(struct response *rs, const char *name,
                       const char *fmt, ...)
{
    size_t room = sizeof(rs->headers) - rs->headers_len;
    char value[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value) || strpbrk(value, "\r\n")) {
        return;
    }
    n = snprintf(rs->headers + rs->headers_len, room, "%s: %s\r\n", name,
                 value);
    if (n > 0 && (size_t)n < room) {
        rs->headers_len += (size_t)n;
    } else {
        rs->headers[rs->headers_len] = '\0';
    }
}

static int method_is(const struct request *rq, const char *method)
{
    return rq->method != NULL && strcmp(rq->method, method) == 0;
}

static void method_not_allowed(struct response *rs, const char *allow)
{
    add_header(rs, "Allow", "%s", allow);
    set_error(rs, 405, "Method not allowed");
}

/* Finds the image part and runs the pipeline on it. */
static enum rf_result predict_upload(const struct handler *h,
                                     const struct request *rq,
                                     struct mp_part *part,
                                     struct prediction *pred,
                                     struct response *rs)
{
    char boundary[MP_BOUNDARY_SIZE];
    struct mp_limits limits = {
        .max_parts = h->cfg->max_parts,
        .max_header_bytes = h->cfg->max_header,
    };
    enum rf_result r;

    if (rq->body_too_large || rq->body_len > h->cfg->max_body) {
        snprintf(rs->detail, sizeof(rs->detail), "body over %zu bytes",
                 h->cfg->max_body);
        return RF_ERR_BODY_TOO_LARGE;
    }
    if (rq->content_type == NULL ||
        mp_boundary(rq->content_type, boundary, sizeof(boundary)) != RF_OK) {
        snprintf(rs->detail, sizeof(rs->detail),
                 "not multipart/form-data with a boundary");
        return RF_ERR_BAD_REQUEST;
    }
    r = mp_find(rq->body, rq->body_len, boundary, &limits, "image", part,
                rs->detail, sizeof(rs->detail));
    if (r != RF_OK) {
        return r;
    }
    r = predictor_run(h->predictor, part->data, part->len, pred, rs->detail,
                      sizeof(rs->detail));
    rs->timing = pred->timing;
    return r;
}

static void serve_predict(const struct handler *h, const struct request *rq,
                          struct response *rs)
{
    struct mp_part part;
    struct prediction pred;
    enum rf_result r;

    r = predict_upload(h, rq, &part, &pred, rs);
    if (r != RF_OK) {
        set_result_error(rs, r);
        return;
    }
    set_json(rs, 200, reply_prediction(&pred,
                                       predictor_card(h->predictor)));
}

static void serve_images(const struct handler *h, const struct request *rq,
                         struct response *rs)
{
    const struct card *card = predictor_card(h->predictor);
    struct mp_part part;
    struct prediction pred;
    enum rf_result r;
    char *emotions;
    int top;

    r = predict_upload(h, rq, &part, &pred, rs);
    if (r != RF_OK) {
        set_result_error(rs, r);
        return;
    }
    emotions = reply_emotions(&pred, card);
    if (emotions == NULL) {
        set_result_error(rs, RF_ERR_NOMEM);
        return;
    }

    /* The same values, rounded the same way, as the /predict JSON. */
    top = pred.ranked[0];
    add_header(rs, "X-Prediction-Age", "%.1f", reply_age(&pred));
    add_header(rs, "X-Prediction-Gender", "%s",
               pred.p_male >= 0.5 ? "male" : "female");
    add_header(rs, "X-Prediction-Gender-Code", "%d", pred.p_male >= 0.5);
    add_header(rs, "X-Prediction-Gender-Probability", "%.6g", pred.p_male);
    add_header(rs, "X-Prediction-Emotion", "%s", card->labels[top]);
    add_header(rs, "X-Prediction-Emotion-Confidence", "%.6g",
               pred.emotions[top]);
    add_header(rs, "X-Prediction-Emotions", "%s", emotions);
    free(emotions);

    rs->status = 200;
    rs->content_type = sniff_mime(pred.format);
    rs->body = part.data;
    rs->body_len = part.len;
}

/* 200 with the live figures when a worker is ready (this one is). */
static void serve_ready(const struct handler *h, struct response *rs)
{
    char *json = malloc(160);
    int ready, busy, live;

    if (h->sb == NULL || json == NULL) {
        free(json);
        set_error(rs, 503, "Not ready");
        return;
    }
    live = sb_workers(h->sb, &ready, &busy);
    snprintf(json, 160, "{\"status\":\"%s\",\"workers\":%d,"
             "\"workers_ready\":%d,\"generation\":%u}",
             ready > 0 ? "ready" : "not ready", live, ready,
             atomic_load(&h->sb->generation));
    set_json(rs, ready > 0 ? 200 : 503, json);
}

static void serve_metrics(const struct handler *h, struct response *rs)
{
    char *text = h->sb != NULL ? metrics_render(h->sb) : NULL;

    if (text == NULL) {
        set_error(rs, 503, "Metrics unavailable");
        return;
    }
    set_json(rs, 200, text);
    rs->content_type = METRICS_CONTENT_TYPE;
}

int handler_serve(const struct handler *h, const struct request *rq,
                  struct response *rs)
{
    const char *path = rq->path != NULL ? rq->path : "";

    memset(rs, 0, sizeof(*rs));
    rs->result = RF_OK;

    if (strcmp(path, "/health") == 0) {
        if (method_is(rq, "GET") || method_is(rq, "HEAD")) {
            set_json(rs, 200, reply_health(predictor_card(h->predictor)));
        } else {
            method_not_allowed(rs, "GET, HEAD");
        }
    } else if (strcmp(path, "/ready") == 0 || strcmp(path, "/metrics") == 0) {
        if (!method_is(rq, "GET") && !method_is(rq, "HEAD")) {
            method_not_allowed(rs, "GET, HEAD");
        } else if (path[1] == 'r') {
            serve_ready(h, rs);
        } else {
            serve_metrics(h, rs);
        }
    } else if (strcmp(path, "/predict") == 0) {
        if (method_is(rq, "POST")) {
            serve_predict(h, rq, rs);
        } else {
            method_not_allowed(rs, "POST");
        }
    } else if (strcmp(path, "/images") == 0) {
        if (method_is(rq, "POST")) {
            serve_images(h, rq, rs);
        } else {
            method_not_allowed(rs, "POST");
        }
    } else {
        set_error(rs, 404, "Not found");
    }
    return rs->status;
}

void response_release(struct response *rs)
{
    free(rs->owned);
    rs->owned = NULL;
    rs->body = NULL;
    rs->body_len = 0;
}
