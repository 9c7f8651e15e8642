/*
 * JSON bodies of Reface's replies, built with jansson. Every function
 * returns a NUL-terminated string the caller frees with free(), or NULL
 * when memory runs out.
 */
#ifndef REFACE_CORE_REPLY_H
#define REFACE_CORE_REPLY_H

#include "core/card.h"
#include "core/predict.h"

/*
 * One face's fields: age (one decimal), gender (1 male, 0 female),
 * gender_name, gender_probability (P(male)), emotion, emotion_confidence,
 * emotions (every label, most likely first).
 */
char *reply_prediction(const struct prediction *p, const struct card *card);

/*
 * The /predict body for one image: face_detected, image {width, height},
 * the largest face's fields as reply_prediction() (absent when there is no
 * face), and faces: each with box {x, y, width, height}, score (null when
 * no detector ran) and its fields, largest first.
 */
char *reply_result(const struct predict_result *r, const struct card *card);

/* One image of a request with several: its result, or an error. */
struct reply_item {
    const struct predict_result *result; /* NULL: the image failed */
    int status;                          /* HTTP status of the failure */
    const char *error;                   /* its client message */
};

/*
 * {"images": [...]}: for each item in order, the body reply_result() gives,
 * or {"error": message, "status": status}.
 */
char *reply_images(const struct reply_item *items, int n,
                   const struct card *card);

/* The compact JSON object of every emotion, for X-Prediction-Emotions. */
char *reply_emotions(const struct prediction *p, const struct card *card);

/* {"error": message}. */
char *reply_error(const char *message);

/* {"status": "ok", "model": name, "emotion_labels": [...]}. */
char *reply_health(const struct card *card);

/* The age as the JSON shows it: rounded to one decimal. */
double reply_age(const struct prediction *p);

#endif
