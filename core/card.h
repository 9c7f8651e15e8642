/*
 * The model card: the JSON file beside a TorchScript model that names it and
 * says what its outputs mean (emotion labels in output order) and what input
 * it wants (size, mean, std). See models/README.md for the contract.
 */
#ifndef REFACE_CORE_CARD_H
#define REFACE_CORE_CARD_H

#include <stddef.h>

#include "core/result.h"

#define CARD_MAX_LABELS 16
#define CARD_LABEL_MAX 32

struct card {
    char name[128];
    int input_size;
    float mean[3];
    float std[3];
    int n_labels;
    char labels[CARD_MAX_LABELS][CARD_LABEL_MAX];
};

/*
 * The card of a model without one: the original Reface export (224 input,
 * ImageNet mean and std, its eight emotions), named `name`.
 */
void card_default(struct card *c, const char *name);

/*
 * Parses the card at `path` into `c`. Keys missing from the file keep the
 * values card_default() gives. Returns RF_ERR_CONFIG with a reason in `err`
 * for a file that is not JSON or has values of the wrong type or range.
 */
enum rf_result card_load(const char *path, struct card *c, char *err,
                         size_t errlen);

#endif
