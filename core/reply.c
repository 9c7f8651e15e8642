/* Building JSON replies with jansson (see core/reply.h). */
#include "core/reply.h"

#include <jansson.h>
#include <math.h>

/* Six significant digits: enough for a probability, no float noise. */
#define REPLY_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))

/* Dumps and frees `root` (stolen, even on failure). */
static char *dump(json_t *root)
{
    char *text;

    if (root == NULL) {
        return NULL;
    }
    text = json_dumps(root, REPLY_FLAGS);
    json_decref(root);
    return text;
}

double reply_age(const struct prediction *p)
{
    return round(p->age * 10.0) / 10.0;
}

static json_t *emotions_object(const struct prediction *p,
                               const struct card *card)
{
    json_t *obj = json_object();

    if (obj == NULL) {
        return NULL;
    }
    /* jansson keeps insertion order, so the object reads most likely first. */
    for (int i = 0; i < p->n_emotions; i++) {
        int k = p->ranked[i];

        if (json_object_set_new(obj, card->labels[k],
                                json_real(p->emotions[k])) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* Sets one face's fields on `obj`; 0, or -1 when memory runs out. */
static int set_attributes(json_t *obj, const struct prediction *p,
                          const struct card *card)
{
    int male = p->p_male >= 0.5;
    int top = p->ranked[0];
    json_t *emotions = emotions_object(p, card);

    if (emotions == NULL) {
        return -1;
    }
    /* Each json_*() value is stolen by json_object_set_new, even NULL. */
    if (json_object_set_new(obj, "age", json_real(reply_age(p))) ||
        json_object_set_new(obj, "gender", json_integer(male)) ||
        json_object_set_new(obj, "gender_name",
                            json_string(male ? "male" : "female")) ||
        json_object_set_new(obj, "gender_probability",
                            json_real(p->p_male)) ||
        json_object_set_new(obj, "emotion", json_string(card->labels[top])) ||
        json_object_set_new(obj, "emotion_confidence",
                            json_real(p->emotions[top]))) {
        json_decref(emotions);
        return -1;
    }
    return json_object_set_new(obj, "emotions", emotions) ? -1 : 0;
}

char *reply_prediction(const struct prediction *p, const struct card *card)
{
    json_t *root = json_object();

    if (root == NULL || set_attributes(root, p, card) != 0) {
        json_decref(root);
        return NULL;
    }
    return dump(root);
}

static json_t *face_object(const struct predict_face *f,
                           const struct card *card)
{
    json_t *obj = json_object();
    json_t *box = json_pack("{s:i, s:i, s:i, s:i}", "x", f->x, "y", f->y,
                            "width", f->width, "height", f->height);

    if (obj == NULL || box == NULL ||
        json_object_set_new(obj, "box", box) ||
        json_object_set_new(obj, "score", f->score < 0.0 ? json_null()
                                          : json_real(f->score)) ||
        set_attributes(obj, &f->attr, card) != 0) {
        if (obj == NULL) {
            json_decref(box);
        }
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *result_object(const struct predict_result *r,
                             const struct card *card)
{
    json_t *root = json_object();
    json_t *faces = json_array();
    json_t *image = json_pack("{s:i, s:i}", "width", r->width,
                              "height", r->height);

    if (root == NULL || faces == NULL || image == NULL) {
        goto fail;
    }
    /* "Detected" means the detector found a face, not that one was sent. */
    if (json_object_set_new(root, "face_detected",
                            json_boolean(r->face_detected &&
                                         r->n_faces > 0))) {
        goto fail;
    }
    if (json_object_set_new(root, "image", image)) {
        image = NULL;   /* stolen even on failure */
        goto fail;
    }
    image = NULL;
    if (r->n_faces > 0 && set_attributes(root, &r->faces[0].attr, card)) {
        goto fail;
    }
    for (int i = 0; i < r->n_faces; i++) {
        if (json_array_append_new(faces, face_object(&r->faces[i], card))) {
            goto fail;
        }
    }
    if (json_object_set_new(root, "faces", faces)) {
        faces = NULL;
        goto fail;
    }
    return root;

fail:
    json_decref(image);
    json_decref(faces);
    json_decref(root);
    return NULL;
}

char *reply_result(const struct predict_result *r, const struct card *card)
{
    return dump(result_object(r, card));
}

char *reply_images(const struct reply_item *items, int n,
                   const struct card *card)
{
    json_t *list = json_array();

    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        json_t *one = items[i].result != NULL
                          ? result_object(items[i].result, card)
                          : json_pack("{s:s, s:i}", "error", items[i].error,
                                      "status", items[i].status);

        if (json_array_append_new(list, one)) {
            json_decref(list);
            return NULL;
        }
    }
    return dump(json_pack("{s:o}", "images", list));
}

char *reply_emotions(const struct prediction *p, const struct card *card)
{
    return dump(emotions_object(p, card));
}

char *reply_error(const char *message)
{
    return dump(json_pack("{s:s}", "error", message));
}

char *reply_health(const struct card *card)
{
    json_t *labels = json_array();

    if (labels == NULL) {
        return NULL;
    }
    for (int i = 0; i < card->n_labels; i++) {
        if (json_array_append_new(labels, json_string(card->labels[i]))) {
            json_decref(labels);
            return NULL;
        }
    }
    return dump(json_pack("{s:s, s:s, s:o}", "status", "ok",
                          "model", card->name, "emotion_labels", labels));
}
