/* Reading model cards with jansson (see core/card.h). */
#include "core/card.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const original_labels[] = {
    "anger", "contempt", "disgust", "fear",
    "happiness", "neutral", "sadness", "surprise",
};

void card_default(struct card *c, const char *name)
{
    static const float mean[3] = { 0.485f, 0.456f, 0.406f };
    static const float std[3] = { 0.229f, 0.224f, 0.225f };

    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->input_size = 224;
    memcpy(c->mean, mean, sizeof(mean));
    memcpy(c->std, std, sizeof(std));
    c->n_labels = 8;
    for (int i = 0; i < 8; i++) {
        snprintf(c->labels[i], CARD_LABEL_MAX, "%s", original_labels[i]);
    }
}

static int read_triple(json_t *root, const char *key, float *out,
                       int positive)
{
    json_t *arr = json_object_get(root, key);

    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) != 3) {
        return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_array_get(arr, i);

        if (!json_is_number(v)) {
            return -1;
        }
        out[i] = (float)json_number_value(v);
        if (positive && !(out[i] > 0.0f)) {
            return -1;
        }
    }
    return 0;
}

enum rf_result card_load(const char *path, struct card *c, char *err,
                         size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    enum rf_result r = RF_ERR_CONFIG;

    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        if (jerr.line > 0) {
            snprintf(err, errlen, "model card \"%s\": %s (line %d)", path,
                     jerr.text, jerr.line);
        } else {
            snprintf(err, errlen, "model card \"%s\": %s", path, jerr.text);
        }
        return RF_ERR_CONFIG;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "model card \"%s\": not a JSON object", path);
        goto out;
    }

    v = json_object_get(root, "name");
    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(err, errlen, "model card: \"name\" must be a string");
            goto out;
        }
        snprintf(c->name, sizeof(c->name), "%s", json_string_value(v));
    }

    v = json_object_get(root, "input_size");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 8 ||
            json_integer_value(v) > 1024) {
            snprintf(err, errlen, "model card: \"input_size\" must be an "
                     "integer in 8..1024");
            goto out;
        }
        c->input_size = (int)json_integer_value(v);
    }

    if (read_triple(root, "mean", c->mean, 0) != 0 ||
        read_triple(root, "std", c->std, 1) != 0) {
        snprintf(err, errlen, "model card: \"mean\" and \"std\" must be "
                 "three numbers (std > 0)");
        goto out;
    }

    v = json_object_get(root, "emotion_labels");
    if (v != NULL) {
        size_t n = json_array_size(v);

        if (!json_is_array(v) || n < 1 || n > CARD_MAX_LABELS) {
            snprintf(err, errlen, "model card: \"emotion_labels\" must be "
                     "an array of 1..%d strings", CARD_MAX_LABELS);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(v, i);

            if (!json_is_string(s) || json_string_length(s) == 0 ||
                json_string_length(s) >= CARD_LABEL_MAX) {
                snprintf(err, errlen, "model card: emotion label %zu must "
                         "be a string of 1..%d bytes", i,
                         CARD_LABEL_MAX - 1);
                goto out;
            }
            snprintf(c->labels[i], CARD_LABEL_MAX, "%s",
                     json_string_value(s));
        }
        c->n_labels = (int)n;
    }
    r = RF_OK;

out:
    json_decref(root);
    return r;
}
