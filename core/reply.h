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
 * The /predict body: age (one decimal), gender (1 male, 0 female),
 * gender_name, gender_probability (P(male)), emotion, emotion_confidence,
 * emotions (every label, most likely first).
 */
char *reply_prediction(const struct prediction *p, const struct card *card);

/* The compact JSON object of every emotion, for X-Prediction-Emotions. */
char *reply_emotions(const struct prediction *p, const struct card *card);

/* {"error": message}. */
char *reply_error(const char *message);

/* {"status": "ok", "model": name, "emotion_labels": [...]}. */
char *reply_health(const struct card *card);

/* The age as the JSON shows it: rounded to one decimal. */
double reply_age(const struct prediction *p);

#endif
