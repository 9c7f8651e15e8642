/* Routes, the /predict and /images API, and JSON errors (fcgi/handler.h). */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/draw.h"
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

/* What the query string asks for. */
struct query {
    struct predict_options opt;
    int draw;
    const char *bad;   /* the parameter with a bad value, or NULL */
};

/* Parses a whole decimal integer in lo..hi from `len` bytes. */
static int parse_int(const char *v, size_t len, long lo, long hi, int *out)
{
    long n = 0;

    if (len == 0 || len > 9) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
        n = n * 10 + (v[i] - '0');
    }
    if (n < lo || n > hi) {
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int parse_bool(const char *v, size_t len, int *out)
{
    if ((len == 4 && memcmp(v, "true", 4) == 0) ||
        (len == 1 && v[0] == '1')) {
        *out = 1;
    } else if ((len == 5 && memcmp(v, "false", 5) == 0) ||
               (len == 1 && v[0] == '0')) {
        *out = 0;
    } else {
        return -1;
    }
    return 0;
}

/*
 * Reads detect, draw, max_faces and min_face from `qs` (may be NULL).
 * Unknown parameters are ignored, as HTTP clients expect; a known one with
 * a bad value names itself in q->bad. The last occurrence wins.
 */
static void parse_query(const char *qs, struct query *q)
{
    predict_options_default(&q->opt);
    q->draw = 0;
    q->bad = NULL;

    while (qs != NULL && *qs != '\0' && q->bad == NULL) {
        size_t len = strcspn(qs, "&;");
        const char *eq = memchr(qs, '=', len);
        size_t klen = eq != NULL ? (size_t)(eq - qs) : len;
        const char *v = eq != NULL ? eq + 1 : qs + len;
        size_t vlen = (size_t)(qs + len - v);

#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(qs, k, klen) == 0)
        if (KEY_IS("detect")) {
            q->bad = parse_bool(v, vlen, &q->opt.detect) ? "detect" : NULL;
        } else if (KEY_IS("draw")) {
            q->bad = parse_bool(v, vlen, &q->draw) ? "draw" : NULL;
        } else if (KEY_IS("max_faces")) {
            q->bad = parse_int(v, vlen, 1, PREDICT_MAX_FACES,
                               &q->opt.max_faces) ? "max_faces" : NULL;
        } else if (KEY_IS("min_face")) {
            q->bad = parse_int(v, vlen, 0, 100000, &q->opt.min_face)
                         ? "min_face" : NULL;
        }
#undef KEY_IS
        qs += len;
        if (*qs != '\0') {
            qs++;
        }
    }
}

/* The request's "image" parts, in order. */
struct image_parts {
    struct mp_part *parts;
    size_t n;
    size_t cap;
};

static bool collect_image(const struct mp_part *part, void *ctx)
{
    struct image_parts *ip = ctx;

    if (mp_part_name_eq(part, "image") && ip->n < ip->cap) {
        ip->parts[ip->n++] = *part;
    }
    return true;
}

/*
 * Checks the body and query, and finds the image parts (all of them, or
 * only the first when `first_only`). On success the caller frees
 * ip->parts.
 */
static enum rf_result read_upload(const struct handler *h,
                                  const struct request *rq,
                                  const struct query *q, int first_only,
                                  struct image_parts *ip,
                                  struct response *rs)
{
    char boundary[MP_BOUNDARY_SIZE];
    struct mp_limits limits = {
        .max_parts = h->cfg->max_parts,
        .max_header_bytes = h->cfg->max_header,
    };
    enum rf_result r;

    memset(ip, 0, sizeof(*ip));
    if (rq->body_too_large || rq->body_len > h->cfg->max_body) {
        snprintf(rs->detail, sizeof(rs->detail), "body over %zu bytes",
                 h->cfg->max_body);
        return RF_ERR_BODY_TOO_LARGE;
    }
    if (q->bad != NULL) {
        snprintf(rs->detail, sizeof(rs->detail), "bad value for %s", q->bad);
        return RF_ERR_BAD_QUERY;
    }
    if (rq->content_type == NULL ||
        mp_boundary(rq->content_type, boundary, sizeof(boundary)) != RF_OK) {
        snprintf(rs->detail, sizeof(rs->detail),
                 "not multipart/form-data with a boundary");
        return RF_ERR_BAD_REQUEST;
    }
    ip->cap = first_only ? 1 : h->cfg->max_parts;
    ip->parts = calloc(ip->cap, sizeof(*ip->parts));
    if (ip->parts == NULL) {
        return RF_ERR_NOMEM;
    }
    r = mp_parse(rq->body, rq->body_len, boundary, &limits, collect_image,
                 ip, rs->detail, sizeof(rs->detail));
    if (r == RF_OK && ip->n == 0) {
        snprintf(rs->detail, sizeof(rs->detail), "no part named image");
        r = RF_ERR_NO_IMAGE;
    }
    if (r != RF_OK) {
        free(ip->parts);
        memset(ip, 0, sizeof(*ip));
    }
    return r;
}

static void add_timing(struct predict_timing *sum,
                       const struct predict_timing *t)
{
    sum->sniff_us += t->sniff_us;
    sum->decode_us += t->decode_us;
    sum->preprocess_us += t->preprocess_us;
    sum->infer_us += t->infer_us;
    sum->detect_us += t->detect_us;
}

/* The client's message for a failure, with the parameter for a query. */
static void set_failure(struct response *rs, enum rf_result r,
                        const struct query *q)
{
    char message[96];

    if (r == RF_ERR_BAD_QUERY && q->bad != NULL) {
        rs->result = r;
        snprintf(message, sizeof(message), "%s: %s",
                 status_for(r)->message, q->bad);
        set_error(rs, status_for(r)->http, message);
        return;
    }
    set_result_error(rs, r);
}

static void serve_predict(const struct handler *h, const struct request *rq,
                          struct response *rs)
{
    const struct card *card = predictor_card(h->predictor);
    struct image_parts ip;
    struct predict_result *results = NULL;
    struct reply_item *items = NULL;
    struct query q;
    enum rf_result r;

    parse_query(rq->query, &q);
    r = read_upload(h, rq, &q, 0, &ip, rs);
    if (r != RF_OK) {
        set_failure(rs, r, &q);
        return;
    }
    results = malloc(sizeof(*results) * ip.n);
    items = calloc(ip.n, sizeof(*items));
    if (results == NULL || items == NULL) {
        set_result_error(rs, RF_ERR_NOMEM);
        goto done;
    }

    for (size_t i = 0; i < ip.n; i++) {
        char detail[sizeof(rs->detail)] = "";

        r = predictor_run(h->predictor, ip.parts[i].data, ip.parts[i].len,
                          &q.opt, &results[i], detail, sizeof(detail));
        add_timing(&rs->timing, &results[i].timing);
        if (r != RF_OK) {
            const struct status_map *m = status_for(r);

            items[i].status = m->http;
            items[i].error = m->message;
            /* The log line keeps the first failure's reason. */
            if (rs->result == RF_OK && ip.n == 1) {
                rs->result = r;
                snprintf(rs->detail, sizeof(rs->detail), "%s", detail);
            } else if (rs->result == RF_OK) {
                rs->result = r;
                snprintf(rs->detail, sizeof(rs->detail), "image %zu: %.200s",
                         i + 1, detail);
            }
        } else {
            items[i].result = &results[i];
        }
    }

    if (ip.n == 1) {
        if (items[0].result == NULL) {
            set_result_error(rs, r);
        } else {
            set_json(rs, 200, reply_result(&results[0], card));
        }
    } else {
        set_json(rs, 200, reply_images(items, (int)ip.n, card));
    }

done:
    free(items);
    free(results);
    free(ip.parts);
}

/* The /images headers of the largest face, as the JSON rounds them. */
static enum rf_result prediction_headers(struct response *rs,
                                         const struct predict_result *res,
                                         const struct card *card)
{
    const struct predict_face *f = &res->faces[0];
    const struct prediction *a = &f->attr;
    char *emotions;
    int top;

    add_header(rs, "X-Prediction-Faces", "%d", res->n_faces);
    add_header(rs, "X-Prediction-Face-Detected", "%s",
               res->face_detected && res->n_faces > 0 ? "true" : "false");
    if (res->n_faces == 0) {
        return RF_OK;
    }
    emotions = reply_emotions(a, card);
    if (emotions == NULL) {
        return RF_ERR_NOMEM;
    }
    top = a->ranked[0];
    add_header(rs, "X-Prediction-Box", "%d,%d,%d,%d", f->x, f->y, f->width,
               f->height);
    add_header(rs, "X-Prediction-Age", "%.1f", reply_age(a));
    add_header(rs, "X-Prediction-Gender", "%s",
               a->p_male >= 0.5 ? "male" : "female");
    add_header(rs, "X-Prediction-Gender-Code", "%d", a->p_male >= 0.5);
    add_header(rs, "X-Prediction-Gender-Probability", "%.6g", a->p_male);
    add_header(rs, "X-Prediction-Emotion", "%s", card->labels[top]);
    add_header(rs, "X-Prediction-Emotion-Confidence", "%.6g",
               a->emotions[top]);
    add_header(rs, "X-Prediction-Emotions", "%s", emotions);
    free(emotions);
    return RF_OK;
}

static void serve_images(const struct handler *h, const struct request *rq,
                         struct response *rs)
{
    const struct card *card = predictor_card(h->predictor);
    struct image_parts ip;
    struct predict_result *res;
    struct img im = { 0 };
    struct query q;
    enum rf_result r;

    parse_query(rq->query, &q);
    r = read_upload(h, rq, &q, 1, &ip, rs);
    if (r != RF_OK) {
        set_failure(rs, r, &q);
        return;
    }
    res = calloc(1, sizeof(*res));
    if (res == NULL) {
        free(ip.parts);
        set_result_error(rs, RF_ERR_NOMEM);
        return;
    }

    /* A drawn reply shows the photo: keep the detector's larger decode. */
    r = predictor_decode(h->predictor, ip.parts[0].data, ip.parts[0].len,
                         q.opt.detect || q.draw, res, &im, rs->detail,
                         sizeof(rs->detail));
    if (r == RF_OK) {
        r = predictor_run_image(h->predictor, &im, &q.opt, res, rs->detail,
                                sizeof(rs->detail));
    }
    rs->timing = res->timing;
    if (r == RF_OK) {
        r = prediction_headers(rs, res, card);
    }
    if (r != RF_OK) {
        set_result_error(rs, r);
    } else if (q.draw) {
        size_t len;
        unsigned char *png;

        draw_faces(&im, res, card);
        png = draw_png(&im, &len);
        if (png == NULL) {
            set_result_error(rs, RF_ERR_NOMEM);
        } else {
            free(rs->owned);
            rs->owned = (char *)png;
            rs->status = 200;
            rs->content_type = "image/png";
            rs->body = png;
            rs->body_len = len;
        }
    } else {
        rs->status = 200;
        rs->content_type = sniff_mime(res->format);
        rs->body = ip.parts[0].data;
        rs->body_len = ip.parts[0].len;
    }
    img_release(&im);
    free(res);
    free(ip.parts);
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
