/*
 * Tests of core/reply: each JSON body is parsed back with jansson and every
 * field checked, and the compact forms are compared byte for byte.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/reply.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* Four labels, deliberately not in probability order. */
static void make_card(struct card *c)
{
    static const char *const labels[] = { "calm", "joy", "anger", "fear" };

    card_default(c, "unit-card");
    c->n_labels = 4;
    for (int i = 0; i < 4; i++) {
        snprintf(c->labels[i], CARD_LABEL_MAX, "%s", labels[i]);
    }
}

/* joy 0.5, anger 0.25, calm 0.125, fear 0.125 (a tie: card order). */
static void make_prediction(struct prediction *p, double age, double p_male)
{
    memset(p, 0, sizeof(*p));
    p->age = age;
    p->p_male = p_male;
    p->n_emotions = 4;
    p->emotions[0] = 0.125;
    p->emotions[1] = 0.5;
    p->emotions[2] = 0.25;
    p->emotions[3] = 0.125;
    p->ranked[0] = 1;
    p->ranked[1] = 2;
    p->ranked[2] = 0;
    p->ranked[3] = 3;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *root;

    if (text == NULL) {
        return NULL;
    }
    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "  not JSON (%s): %s\n", jerr.text, text);
    }
    return root;
}

static double num(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    CHECK(json_is_number(v));
    return json_is_number(v) ? json_number_value(v) : -12345.0;
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    CHECK(json_is_string(v));
    return json_is_string(v) ? json_string_value(v) : "";
}

static void test_prediction_fields(void)
{
    struct card card;
    struct prediction p;
    char *text;
    json_t *root, *emo;
    const char *key;
    json_t *value;
    const char *order[4] = { "joy", "anger", "calm", "fear" };
    const double probs[4] = { 0.5, 0.25, 0.125, 0.125 };
    int i = 0;

    make_card(&card);
    make_prediction(&p, 33.46, 0.8123456789);
    text = reply_prediction(&p, &card);
    CHECK(text != NULL);
    root = parse(text);
    CHECK(json_is_object(root));
    if (root == NULL) {
        free(text);
        return;
    }
    CHECK_INT_EQ(json_object_size(root), 7);
    CHECK_NEAR(num(root, "age"), 33.5, 1e-9);
    CHECK(json_is_integer(json_object_get(root, "gender")));
    CHECK_INT_EQ(json_integer_value(json_object_get(root, "gender")), 1);
    CHECK_STR_EQ(str(root, "gender_name"), "male");
    /* Six significant digits: 0.8123456789 is written as 0.812346. */
    CHECK_NEAR(num(root, "gender_probability"), 0.812346, 1e-12);
    CHECK_STR_EQ(str(root, "emotion"), "joy");
    CHECK_NEAR(num(root, "emotion_confidence"), 0.5, 1e-12);

    emo = json_object_get(root, "emotions");
    CHECK(json_is_object(emo));
    CHECK_INT_EQ(json_object_size(emo), 4);
    /* jansson iterates in insertion order: most likely first. */
    json_object_foreach(emo, key, value) {
        if (i < 4) {
            CHECK_STR_EQ(key, order[i]);
            CHECK(json_is_real(value));
            CHECK_NEAR(json_real_value(value), probs[i], 1e-12);
        }
        i++;
    }
    CHECK_INT_EQ(i, 4);
    /* And the text itself reads in that order, whatever a parser does. */
    CHECK(strstr(text, "\"joy\"") < strstr(text, "\"anger\""));
    CHECK(strstr(text, "\"anger\"") < strstr(text, "\"calm\""));
    CHECK(strstr(text, "\"calm\"") < strstr(text, "\"fear\""));
    CHECK(strchr(text, ' ') == NULL);
    CHECK(strchr(text, '\n') == NULL);
    json_decref(root);
    free(text);
}

static void test_prediction_female(void)
{
    struct card card;
    struct prediction p;
    char *text;
    json_t *root;

    make_card(&card);
    make_prediction(&p, 0.04, 0.4999);
    p.ranked[0] = 2;   /* anger on top now: emotion follows ranked[0] */
    p.ranked[1] = 1;
    text = reply_prediction(&p, &card);
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_NEAR(num(root, "age"), 0.0, 1e-12);
        CHECK_INT_EQ(json_integer_value(json_object_get(root, "gender")), 0);
        CHECK_STR_EQ(str(root, "gender_name"), "female");
        CHECK_NEAR(num(root, "gender_probability"), 0.4999, 1e-12);
        CHECK_STR_EQ(str(root, "emotion"), "anger");
        CHECK_NEAR(num(root, "emotion_confidence"), 0.25, 1e-12);
    }
    json_decref(root);
    free(text);
}

/* P(male) of exactly 0.5 is "male", gender 1. */
static void test_prediction_half(void)
{
    struct card card;
    struct prediction p;
    char *text;
    json_t *root;

    make_card(&card);
    make_prediction(&p, 100.0, 0.5);
    text = reply_prediction(&p, &card);
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_INT_EQ(json_integer_value(json_object_get(root, "gender")), 1);
        CHECK_STR_EQ(str(root, "gender_name"), "male");
        CHECK_NEAR(num(root, "age"), 100.0, 1e-12);
    }
    json_decref(root);
    free(text);
}

static void test_age_rounding(void)
{
    static const struct {
        double age, want;
    } cases[] = {
        { 33.46, 33.5 }, { 33.44, 33.4 }, { 27.25, 27.3 }, { 0.04, 0.0 },
        { 0.05, 0.1 }, { 99.96, 100.0 }, { 100.0, 100.0 }, { 0.0, 0.0 },
        { 41.0, 41.0 },
    };
    struct card card;
    struct prediction p;

    make_card(&card);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text;
        json_t *root;

        make_prediction(&p, cases[i].age, 0.3);
        CHECK_NEAR(reply_age(&p), cases[i].want, 1e-9);
        text = reply_prediction(&p, &card);
        root = parse(text);
        CHECK(root != NULL);
        if (root != NULL) {
            /* The JSON carries the rounded value, not 33.460000001. */
            CHECK_NEAR(num(root, "age"), cases[i].want, 1e-9);
        }
        json_decref(root);
        free(text);
    }
}

static void test_emotions_compact(void)
{
    struct card card;
    struct prediction p;
    char *text;

    make_card(&card);
    make_prediction(&p, 20.0, 0.1);
    text = reply_emotions(&p, &card);
    CHECK_STR_EQ(text, "{\"joy\":0.5,\"anger\":0.25,\"calm\":0.125,"
                       "\"fear\":0.125}");
    free(text);

    /* Six significant digits, no float noise such as 0.10000000000000001. */
    p.emotions[1] = 0.1;
    p.emotions[2] = 1.0 / 3.0;
    text = reply_emotions(&p, &card);
    CHECK_STR_EQ(text, "{\"joy\":0.1,\"anger\":0.333333,\"calm\":0.125,"
                       "\"fear\":0.125}");
    free(text);
}

static void test_error(void)
{
    char *text = reply_error("Unsupported image format");
    json_t *root;

    CHECK_STR_EQ(text, "{\"error\":\"Unsupported image format\"}");
    free(text);

    /* Quotes, backslashes and control bytes are escaped. */
    text = reply_error("a \"q\" \\ b\n");
    CHECK_STR_EQ(text, "{\"error\":\"a \\\"q\\\" \\\\ b\\n\"}");
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_STR_EQ(str(root, "error"), "a \"q\" \\ b\n");
    }
    json_decref(root);
    free(text);
}

static void test_health(void)
{
    struct card card;
    char *text;
    json_t *root, *labels;

    make_card(&card);
    text = reply_health(&card);
    CHECK_STR_EQ(text, "{\"status\":\"ok\",\"model\":\"unit-card\","
                       "\"emotion_labels\":[\"calm\",\"joy\",\"anger\","
                       "\"fear\"]}");
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_STR_EQ(str(root, "status"), "ok");
        CHECK_STR_EQ(str(root, "model"), "unit-card");
        labels = json_object_get(root, "emotion_labels");
        CHECK(json_is_array(labels));
        CHECK_INT_EQ(json_array_size(labels), 4);
        CHECK_STR_EQ(json_string_value(json_array_get(labels, 3)), "fear");
    }
    json_decref(root);
    free(text);

    /* The default card: the original eight emotions. */
    card_default(&card, "faceapi.pt");
    text = reply_health(&card);
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK_STR_EQ(str(root, "model"), "faceapi.pt");
        CHECK_INT_EQ(json_array_size(json_object_get(root,
                                                     "emotion_labels")), 8);
    }
    json_decref(root);
    free(text);
}

/* Two faces, the larger first, as predictor_run leaves them. */
static void make_result(struct predict_result *r)
{
    memset(r, 0, sizeof(*r));
    r->width = 640;
    r->height = 480;
    r->face_detected = 1;
    r->n_faces = 2;
    r->faces[0].x = 10;
    r->faces[0].y = 20;
    r->faces[0].width = 200;
    r->faces[0].height = 240;
    r->faces[0].score = 0.987654321;
    make_prediction(&r->faces[0].attr, 33.46, 0.8123456789);
    r->faces[1].x = 400;
    r->faces[1].y = 30;
    r->faces[1].width = 50;
    r->faces[1].height = 60;
    r->faces[1].score = 0.61;
    make_prediction(&r->faces[1].attr, 7.0, 0.2);
}

static void check_face_fields(json_t *obj, double age, const char *gname)
{
    CHECK_NEAR(num(obj, "age"), age, 1e-9);
    CHECK_STR_EQ(str(obj, "gender_name"), gname);
    CHECK_STR_EQ(str(obj, "emotion"), "joy");
    CHECK_NEAR(num(obj, "emotion_confidence"), 0.5, 1e-12);
    CHECK_INT_EQ(json_object_size(json_object_get(obj, "emotions")), 4);
}

static void test_result_faces(void)
{
    static const char *const top_keys[] = {
        "face_detected", "image", "age", "gender", "gender_name",
        "gender_probability", "emotion", "emotion_confidence", "emotions",
        "faces",
    };
    struct card card;
    struct predict_result r;
    char *text;
    json_t *root, *faces, *f0, *f1, *box;
    const char *key;
    json_t *value;
    size_t k = 0;

    make_card(&card);
    make_result(&r);
    text = reply_result(&r, &card);
    root = parse(text);
    CHECK(json_is_object(root));
    if (root == NULL) {
        free(text);
        return;
    }
    /* Every key of the agreed format, in its order, and nothing else. */
    CHECK_INT_EQ(json_object_size(root), 10);
    json_object_foreach(root, key, value) {
        if (k < 10) {
            CHECK_STR_EQ(key, top_keys[k]);
        }
        k++;
    }
    CHECK(json_is_true(json_object_get(root, "face_detected")));
    CHECK_INT_EQ(json_integer_value(json_object_get(
        json_object_get(root, "image"), "width")), 640);
    CHECK_INT_EQ(json_integer_value(json_object_get(
        json_object_get(root, "image"), "height")), 480);
    /* The top-level fields are the largest face's. */
    check_face_fields(root, 33.5, "male");

    faces = json_object_get(root, "faces");
    CHECK(json_is_array(faces));
    CHECK_INT_EQ(json_array_size(faces), 2);
    f0 = json_array_get(faces, 0);
    f1 = json_array_get(faces, 1);
    CHECK_INT_EQ(json_object_size(f0), 9);
    box = json_object_get(f0, "box");
    CHECK(json_is_integer(json_object_get(box, "x")));
    CHECK_INT_EQ(json_integer_value(json_object_get(box, "x")), 10);
    CHECK_INT_EQ(json_integer_value(json_object_get(box, "y")), 20);
    CHECK_INT_EQ(json_integer_value(json_object_get(box, "width")), 200);
    CHECK_INT_EQ(json_integer_value(json_object_get(box, "height")), 240);
    CHECK_NEAR(num(f0, "score"), 0.987654, 1e-12);
    check_face_fields(f0, 33.5, "male");
    CHECK_INT_EQ(json_integer_value(json_object_get(
        json_object_get(f1, "box"), "x")), 400);
    CHECK_NEAR(num(f1, "score"), 0.61, 1e-12);
    check_face_fields(f1, 7.0, "female");
    json_decref(root);
    free(text);
}

static void test_result_no_face(void)
{
    struct card card;
    struct predict_result r;
    char *text;

    make_card(&card);
    make_result(&r);
    r.n_faces = 0;
    text = reply_result(&r, &card);
    CHECK_STR_EQ(text, "{\"face_detected\":false,\"image\":{\"width\":640,"
                       "\"height\":480},\"faces\":[]}");
    free(text);
}

/* detect=false: one face, the whole image, no score, not "detected". */
static void test_result_whole_image(void)
{
    struct card card;
    struct predict_result r;
    char *text;
    json_t *root, *f0;

    make_card(&card);
    make_result(&r);
    r.face_detected = 0;
    r.n_faces = 1;
    r.faces[0].x = 0;
    r.faces[0].y = 0;
    r.faces[0].width = 640;
    r.faces[0].height = 480;
    r.faces[0].score = -1.0;
    text = reply_result(&r, &card);
    root = parse(text);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK(json_is_false(json_object_get(root, "face_detected")));
        check_face_fields(root, 33.5, "male");
        f0 = json_array_get(json_object_get(root, "faces"), 0);
        CHECK(json_is_null(json_object_get(f0, "score")));
        CHECK_INT_EQ(json_integer_value(json_object_get(
            json_object_get(f0, "box"), "width")), 640);
        CHECK_INT_EQ(json_array_size(json_object_get(root, "faces")), 1);
    }
    json_decref(root);
    free(text);
}

static void test_images_list(void)
{
    struct card card;
    struct predict_result r;
    struct reply_item items[2];
    char *text;
    json_t *root, *list;

    make_card(&card);
    make_result(&r);
    r.n_faces = 0;
    items[0].result = NULL;
    items[0].status = 415;
    items[0].error = "Unsupported image format";
    items[1].result = &r;
    items[1].status = 0;
    items[1].error = NULL;
    text = reply_images(items, 2, &card);
    CHECK_STR_EQ(text, "{\"images\":[{\"error\":\"Unsupported image format\","
                       "\"status\":415},{\"face_detected\":false,\"image\":"
                       "{\"width\":640,\"height\":480},\"faces\":[]}]}");
    root = parse(text);
    list = json_object_get(root, "images");
    CHECK_INT_EQ(json_array_size(list), 2);
    json_decref(root);
    free(text);
}

int main(void)
{
    RUN(test_prediction_fields);
    RUN(test_prediction_female);
    RUN(test_prediction_half);
    RUN(test_age_rounding);
    RUN(test_emotions_compact);
    RUN(test_error);
    RUN(test_health);
    RUN(test_result_faces);
    RUN(test_result_no_face);
    RUN(test_result_whole_image);
    RUN(test_images_list);
    return check_summary("reply");
}
