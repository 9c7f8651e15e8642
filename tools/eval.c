/*
 * reface-eval: runs the server's own pipeline (core/predict.c, the code each
 * worker runs) over a folder with a labels.csv, and prints accuracy per
 * source: age MAE, gender accuracy, emotion top-1, and the total-variation
 * distance to soft emotion labels. With a detector, every photo is measured
 * twice: through detection (the largest face) and as a whole image (the
 * API's detect=false), and photos where no face was found are counted.
 * No FastCGI, no Python.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/predict.h"

#define EVAL_MAX_SOURCES 16
#define EVAL_FIELDS 6

struct tally {
    char source[64];
    int n, failed, missed;
    int extra;          /* photos where more than one face was found */
    int age_n;
    double age_abs;
    int gender_n, gender_ok;
    int emo_n, emo_ok;
    int tv_n;
    double tv_sum;
};

struct eval {
    struct tally sources[EVAL_MAX_SOURCES + 1]; /* the last is "all" */
    int n_sources;
};

/*
 * Splits one CSV record (RFC 4180 quoting) in place into `fields`. Returns
 * the number of fields found.
 */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *r = line, *w = line;

    while (n < max) {
        fields[n++] = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == '\0') {
                    break;
                }
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
        }
        while (*r != '\0' && *r != ',' && *r != '\n' && *r != '\r') {
            *w++ = *r++;
        }
        if (*r != ',') {
            *w = '\0';
            break;
        }
        r++;
        *w++ = '\0';
    }
    return n;
}

static struct tally *tally_for(struct eval *ev, const char *source)
{
    for (int i = 0; i < ev->n_sources; i++) {
        if (strcmp(ev->sources[i].source, source) == 0) {
            return &ev->sources[i];
        }
    }
    if (ev->n_sources == EVAL_MAX_SOURCES) {
        return NULL;
    }
    snprintf(ev->sources[ev->n_sources].source, 64, "%s", source);
    return &ev->sources[ev->n_sources++];
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    struct stat st;

    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0) {
        buf = malloc((size_t)st.st_size);
        if (buf != NULL &&
            fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    fclose(f);
    return buf;
}

static int label_index(const struct card *card, const char *name)
{
    for (int i = 0; i < card->n_labels; i++) {
        if (strcmp(card->labels[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Half the L1 distance between the soft label and the prediction, over
 * the union of both label sets (a label the model lacks counts as 0). */
static int tv_distance(const char *json, const struct card *card,
                       const struct prediction *p, double *out)
{
    json_t *root = json_loads(json, 0, NULL);
    const char *key;
    json_t *value;
    double sum = 0.0, covered = 0.0;

    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    json_object_foreach(root, key, value) {
        int k = label_index(card, key);
        double q = json_number_value(value);
        double m = k >= 0 ? p->emotions[k] : 0.0;

        sum += fabs(q - m);
        covered += m;
    }
    /* Model labels absent from the soft label's keys. */
    sum += fabs(1.0 - covered) > 0 ? 1.0 - covered : 0.0;
    json_decref(root);
    *out = 0.5 * sum;
    return 0;
}

/* ok: 1 scored, 0 failed, -1 no face found (counted, not scored). */
static void add(struct tally *t, const char **f, const struct card *card,
                const struct prediction *p, int ok)
{
    t->n++;
    if (ok < 0) {
        t->missed++;
        return;
    }
    if (!ok) {
        t->failed++;
        return;
    }
    if (f[1][0] != '\0') {
        t->age_n++;
        t->age_abs += fabs(p->age - atof(f[1]));
    }
    if (f[2][0] != '\0') {
        int male = p->p_male >= 0.5;

        t->gender_n++;
        t->gender_ok += (strcmp(f[2], "male") == 0) == male;
    }
    if (f[3][0] != '\0') {
        t->emo_n++;
        t->emo_ok += strcmp(card->labels[p->ranked[0]], f[3]) == 0;
    }
    if (f[5][0] != '\0') {
        double tv;

        if (tv_distance(f[5], card, p, &tv) == 0) {
            t->tv_n++;
            t->tv_sum += tv;
        }
    }
}

static void progress(int done, int total)
{
    int width = 30, filled = total ? done * width / total : width;

    if (!isatty(STDERR_FILENO)) {
        return;
    }
    fprintf(stderr, "\r[%.*s%*s] %d/%d", filled,
            "==============================", width - filled, "", done,
            total);
    if (done == total) {
        fputc('\n', stderr);
    }
}

static void print_metric(int n, double value, const char *fmt)
{
    if (n == 0) {
        printf(" %12s", "-");
    } else {
        char cell[32];

        snprintf(cell, sizeof(cell), fmt, value, n);
        printf(" %12s", cell);
    }
}

static void print_table(const struct eval *ev, const char *title)
{
    printf("%s\n", title);
    printf("%-12s %5s %6s %6s %5s %12s %12s %12s %12s\n", "source", "n",
           "failed", "missed", "extra", "age MAE", "gender acc",
           "emotion top1", "emotion TV");
    for (int i = 0; i <= ev->n_sources; i++) {
        const struct tally *t = i < ev->n_sources
                                    ? &ev->sources[i]
                                    : &ev->sources[EVAL_MAX_SOURCES];

        printf("%-12s %5d %6d %6d %5d", t->source, t->n, t->failed,
               t->missed, t->extra);
        print_metric(t->age_n, t->age_n ? t->age_abs / t->age_n : 0,
                     "%.2f (%d)");
        print_metric(t->gender_n,
                     t->gender_n ? 100.0 * t->gender_ok / t->gender_n : 0,
                     "%.1f%% (%d)");
        print_metric(t->emo_n, t->emo_n ? 100.0 * t->emo_ok / t->emo_n : 0,
                     "%.1f%% (%d)");
        print_metric(t->tv_n, t->tv_n ? t->tv_sum / t->tv_n : 0,
                     "%.3f (%d)");
        printf("\n");
    }
}

static json_t *sources_json(const struct eval *ev, int with_missed)
{
    json_t *sources = json_object();

    for (int i = 0; i <= ev->n_sources; i++) {
        const struct tally *t = i < ev->n_sources
                                    ? &ev->sources[i]
                                    : &ev->sources[EVAL_MAX_SOURCES];
        json_t *row = json_pack("{s:i, s:i}", "n", t->n, "failed", t->failed);

        if (with_missed) {
            json_object_set_new(row, "missed", json_integer(t->missed));
            json_object_set_new(row, "extra", json_integer(t->extra));
        }
        if (t->age_n) {
            json_object_set_new(row, "age_mae",
                                json_real(t->age_abs / t->age_n));
        }
        if (t->gender_n) {
            json_object_set_new(row, "gender_accuracy",
                                json_real((double)t->gender_ok / t->gender_n));
        }
        if (t->emo_n) {
            json_object_set_new(row, "emotion_top1",
                                json_real((double)t->emo_ok / t->emo_n));
        }
        if (t->tv_n) {
            json_object_set_new(row, "emotion_tv",
                                json_real(t->tv_sum / t->tv_n));
        }
        json_object_set_new(sources, t->source, row);
    }
    return sources;
}

/*
 * The committed figures: "sources" is what the server answers by default
 * (with detection when a detector is loaded), "whole_image" the same photos
 * with detect=false, and "whole_image_where_found" only the photos where
 * a face was found, for a like-for-like comparison.
 */
static int write_json(const struct eval *const *ev, const struct card *card,
                      const struct config *cfg, int detecting,
                      const char *path)
{
    json_t *root = json_pack("{s:s, s:f}", "model", card->name,
                             "crop", cfg->crop);
    int rc;

    if (detecting) {
        json_object_set_new(root, "detector", json_pack(
            "{s:s, s:i, s:f, s:f, s:i}", "name", "faceapi-ssd-mobilenetv1",
            "input_size", DETECT_INPUT_SIZE, "detect_score",
            cfg->detect_score, "face_margin", cfg->face_margin,
            "detect_retry", cfg->detect_retry));
    }
    json_object_set_new(root, "sources", sources_json(ev[0], detecting));
    if (detecting) {
        json_object_set_new(root, "whole_image", sources_json(ev[1], 0));
        json_object_set_new(root, "whole_image_where_found",
                            sources_json(ev[2], 0));
    }
    rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    return rc;
}

/*
 * The head of a --rects file: what chose the rectangles, so that a change
 * of detector settings changes the file (training caches key on its bytes).
 */
static void write_rects_head(FILE *rects, const struct config *cfg)
{
    fprintf(rects, "# reface-eval --rects: detector %s, input_size %d, "
            "detect_score %.6g, face_margin %.6g, detect_retry %d\n",
            cfg->detector, DETECT_INPUT_SIZE, cfg->detect_score,
            cfg->face_margin, cfg->detect_retry);
    fprintf(rects, "file\timage_width\timage_height\tfound\tx\ty\twidth\t"
            "height\tscore\n");
}

/*
 * One --rects row: the decoded image's size, then the crop of the largest
 * face in its pixels (found 1), or found 0 and empty fields.
 */
static void write_rects_row(FILE *rects, const char *file,
                            const struct predict_result *res)
{
    const struct predict_face *f = &res->faces[0];

    if (res->n_faces == 0) {
        fprintf(rects, "%s\t%d\t%d\t0\t\t\t\t\t\n", file, res->width,
                res->height);
        return;
    }
    fprintf(rects, "%s\t%d\t%d\t1\t%d\t%d\t%d\t%d\t%.6f\n", file,
            res->width, res->height, f->crop.x, f->crop.y, f->crop.width,
            f->crop.height, f->score);
}

/* One TSV row: file, raw age, P(male), emotions in the card's order. */
static void write_dump_row(FILE *dump, const char *file,
                           const struct prediction *p)
{
    fprintf(dump, "%s\t%.7g\t%.7g", file, p->age_raw, p->p_male);
    for (int i = 0; i < p->n_emotions; i++) {
        fprintf(dump, "\t%.7g", p->emotions[i]);
    }
    fputc('\n', dump);
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: reface-eval [--model M.pt] [--crop F] [--detector D.pt]\n"
        "                   [--detect 0|1] [--detect-score S]\n"
        "                   [--face-margin F] [--detect-retry 0|1]\n"
        "                   [--limit N] [--json OUT]\n"
        "                   [--dump OUT.tsv] [--rects OUT.tsv] DIR\n"
        "Runs the server's C pipeline on every image listed in\n"
        "DIR/labels.csv (columns file,age,gender,emotion,source,\n"
        "emotions_json) and prints accuracy per source: with detection\n"
        "(the largest face; photos without a face are 'missed') next to\n"
        "the whole image (detect=false). --detect 0 measures the whole\n"
        "image only. --json writes the tables as JSON; --dump writes each\n"
        "image's raw outputs (of the default path); --rects writes, for\n"
        "each image, the rectangle the attribute model got with detection\n"
        "(the largest face) or that no face was found.\n");
}

/* Adds one photo's outcome to its source's tally and to "all". */
static void add_both(struct eval *ev, const char **f, const struct card *card,
                     const struct prediction *p, int ok, int extra)
{
    struct tally *t = tally_for(ev, f[4][0] ? f[4] : "unknown");

    if (t != NULL) {
        add(t, f, card, p, ok);
        t->extra += extra;
    }
    add(&ev->sources[EVAL_MAX_SOURCES], f, card, p, ok);
    ev->sources[EVAL_MAX_SOURCES].extra += extra;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, 'm' },
        { "crop", required_argument, NULL, 'c' },
        { "detector", required_argument, NULL, 'D' },
        { "detect-score", required_argument, NULL, 's' },
        { "face-margin", required_argument, NULL, 'g' },
        { "detect-retry", required_argument, NULL, 'r' },
        { "detect", required_argument, NULL, 'x' },
        { "limit", required_argument, NULL, 'n' },
        { "json", required_argument, NULL, 'j' },
        { "dump", required_argument, NULL, 'd' },
        { "rects", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct config cfg;
    struct predictor_status st;
    struct predictor_source src;
    struct predictor *pred;
    struct predict_result *res;
    struct eval *ev[3];
    char err[512], path[4096], line[8192];
    const char *json_out = NULL;
    FILE *dump = NULL, *rects = NULL;
    int opt, limit = -1, total = 0, done = 0, detect = 1, detecting;
    /* Milliseconds summed over photos: detector forwards, all forwards
     * with detection, forwards of the whole-image path. */
    double det_ms = 0.0, found_ms = 0.0, whole_ms = 0.0;
    FILE *csv;

    config_defaults(&cfg);
    rlog_setup("eval", RLOG_WARN);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *key = opt == 'm' ? "model" : opt == 'c' ? "crop"
                        : opt == 'D' ? "detector"
                        : opt == 's' ? "detect_score"
                        : opt == 'g' ? "face_margin"
                        : opt == 'r' ? "detect_retry" : NULL;

        if (key != NULL) {
            if (config_set(&cfg, key, optarg, err, sizeof(err)) != RF_OK) {
                fprintf(stderr, "reface-eval: %s\n", err);
                return 2;
            }
        } else if (opt == 'x') {
            detect = atoi(optarg) != 0;
        } else if (opt == 'n') {
            limit = atoi(optarg);
        } else if (opt == 'j') {
            json_out = optarg;
        } else if (opt == 'd') {
            dump = fopen(optarg, "w");
            if (dump == NULL) {
                fprintf(stderr, "reface-eval: cannot write %s: %s\n", optarg,
                        strerror(errno));
                return 1;
            }
        } else if (opt == 'R') {
            rects = fopen(optarg, "w");
            if (rects == NULL) {
                fprintf(stderr, "reface-eval: cannot write %s: %s\n", optarg,
                        strerror(errno));
                return 1;
            }
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    if (!detect) {
        cfg.detector[0] = '\0';
    }

    snprintf(path, sizeof(path), "%s/labels.csv", argv[optind]);
    csv = fopen(path, "r");
    if (csv == NULL) {
        fprintf(stderr, "reface-eval: cannot open %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof(line), csv) != NULL) {
        total++;
    }
    total = total > 0 ? total - 1 : 0;
    if (limit >= 0 && limit < total) {
        total = limit;
    }
    rewind(csv);

    if (predictor_source_read(&cfg, &src, err, sizeof(err)) != RF_OK) {
        fprintf(stderr, "reface-eval: %s\n", err);
        predictor_source_release(&src);
        fclose(csv);
        return 1;
    }
    pred = predictor_new(&cfg, &src, &st, err, sizeof(err));
    predictor_source_release(&src);
    if (pred == NULL) {
        fprintf(stderr, "reface-eval: %s\n", err);
        fclose(csv);
        return 1;
    }
    detecting = st.detector;
    if (detect && !detecting) {
        fprintf(stderr, "reface-eval: no detector at \"%s\": whole images "
                "only\n", cfg.detector);
    }
    if (rects != NULL && !detecting) {
        /* Rectangles without a detector would be centre crops, silently. */
        fprintf(stderr, "reface-eval: --rects needs the detector\n");
        predictor_free(pred);
        fclose(csv);
        fclose(rects);
        return 1;
    }
    if (rects != NULL) {
        write_rects_head(rects, &cfg);
    }

    ev[0] = calloc(1, sizeof(*ev[0]));
    ev[1] = calloc(1, sizeof(*ev[1]));
    ev[2] = calloc(1, sizeof(*ev[2]));
    res = malloc(sizeof(*res));
    if (ev[0] == NULL || ev[1] == NULL || ev[2] == NULL || res == NULL) {
        predictor_free(pred);
        fclose(csv);
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(ev[i]->sources[EVAL_MAX_SOURCES].source, 64, "all");
    }

    if (fgets(line, sizeof(line), csv) == NULL) { /* the header */
        line[0] = '\0';
    }
    while (done < total && fgets(line, sizeof(line), csv) != NULL) {
        const struct card *card = predictor_card(pred);
        struct predict_options po;
        struct prediction found, whole;
        struct img im = { 0 };
        char *f[EVAL_FIELDS];
        unsigned char *img;
        size_t len = 0;
        int ok_found = 0, ok_whole = 0, extra = 0;

        if (csv_split(line, f, EVAL_FIELDS) != EVAL_FIELDS) {
            fprintf(stderr, "reface-eval: skipping malformed row %d\n",
                    done + 2);
            continue;
        }
        memset(&found, 0, sizeof(found));
        memset(&whole, 0, sizeof(whole));
        predict_options_default(&po);
        snprintf(path, sizeof(path), "%s/%s", argv[optind], f[0]);
        img = slurp(path, &len);
        memset(res, 0, sizeof(*res));
        if (img == NULL) {
            fprintf(stderr, "\nreface-eval: cannot read %s\n", path);
        } else {
            /* The server's default answer: the largest face. */
            if (detecting) {
                if (predictor_decode(pred, img, len, 1, res, &im, err,
                                     sizeof(err)) != RF_OK ||
                    predictor_run_image(pred, &im, &po, res, err,
                                        sizeof(err)) != RF_OK) {
                    fprintf(stderr, "\nreface-eval: %s: %s\n", f[0], err);
                } else if (res->n_faces == 0) {
                    ok_found = -1;
                } else {
                    found = res->faces[0].attr;
                    ok_found = 1;
                    /* Each photo of the set shows one person. */
                    extra = res->n_faces > 1;
                }
                if (rects != NULL && ok_found != 0) {
                    write_rects_row(rects, f[0], res);
                }
                det_ms += res->timing.detect_us / 1000.0;
                found_ms += res->timing.infer_us / 1000.0;
            }
            /*
             * Decoded again, as the server decodes for detect=false: a
             * large JPEG then takes a smaller scale than for the detector.
             */
            po.detect = 0;
            memset(res, 0, sizeof(*res));
            if (predictor_run(pred, img, len, &po, res, err, sizeof(err)) !=
                RF_OK) {
                fprintf(stderr, "\nreface-eval: %s: %s\n", f[0], err);
            } else {
                whole = res->faces[0].attr;
                ok_whole = 1;
            }
            whole_ms += res->timing.infer_us / 1000.0;
        }
        img_release(&im);
        free(img);

        if (dump != NULL && (detecting ? ok_found == 1 : ok_whole)) {
            write_dump_row(dump, f[0], detecting ? &found : &whole);
        }
        if (detecting) {
            add_both(ev[0], (const char **)f, card, &found, ok_found, extra);
            add_both(ev[1], (const char **)f, card, &whole, ok_whole, 0);
            if (ok_found == 1) {
                add_both(ev[2], (const char **)f, card, &whole, ok_whole, 0);
            }
        } else {
            add_both(ev[0], (const char **)f, card, &whole, ok_whole, 0);
        }
        progress(++done, total);
    }
    fclose(csv);

    printf("model %s, %d emotion labels\n", predictor_card(pred)->name,
           predictor_card(pred)->n_labels);
    if (detecting) {
        char title[160];

        snprintf(title, sizeof(title), "with detection (largest face; "
                 "detect_score %.2f, face_margin %.2f, detect_retry %d):",
                 cfg.detect_score, cfg.face_margin, cfg.detect_retry);
        print_table(ev[0], title);
        snprintf(title, sizeof(title), "whole image (detect=false, centred "
                 "crop %.2f):", cfg.crop);
        print_table(ev[1], title);
        print_table(ev[2], "whole image, only the photos where a face was "
                    "found:");
        printf("mean forward time per photo: detector %.1f ms, with "
               "detection (detector and attributes) %.1f ms, whole image "
               "%.1f ms\n", det_ms / (done ? done : 1),
               found_ms / (done ? done : 1), whole_ms / (done ? done : 1));
    } else {
        char title[96];

        snprintf(title, sizeof(title), "whole image (centred crop %.2f):",
                 cfg.crop);
        print_table(ev[0], title);
    }
    if (json_out != NULL &&
        write_json((const struct eval *const *)ev, predictor_card(pred),
                   &cfg, detecting, json_out) != 0) {
        fprintf(stderr, "reface-eval: cannot write %s\n", json_out);
    }
    if (dump != NULL) {
        fclose(dump);
    }
    if (rects != NULL && fclose(rects) != 0) {
        fprintf(stderr, "reface-eval: cannot write the rectangles\n");
        predictor_free(pred);
        return 1;
    }
    predictor_free(pred);
    for (int i = 0; i < 3; i++) {
        free(ev[i]);
    }
    free(res);
    return 0;
}
