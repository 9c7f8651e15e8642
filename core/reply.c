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

char *reply_prediction(const struct prediction *p, const struct card *card)
{
    int male = p->p_male >= 0.5;
    int top = p->ranked[0];
    json_t *emotions = emotions_object(p, card);

    if (emotions == NULL) {
        return NULL;
    }
    return dump(json_pack("{s:f, s:i, s:s, s:f, s:s, s:f, s:o}",
                          "age", reply_age(p),
                          "gender", male,
                          "gender_name", male ? "male" : "female",
                          "gender_probability", p->p_male,
                          "emotion", card->labels[top],
                          "emotion_confidence", p->emotions[top],
                          "emotions", emotions));
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
