/*
 * The model wrapper: a plain C view of a TorchScript module run by libtorch.
 * The implementation (core/model.cpp) is the only C++ in Reface; no C++
 * exception crosses this header: each becomes a result code and a message.
 * Call nothing here before fork(): libtorch starts threads and keeps state
 * that a forked child must not inherit half-made.
 */
#ifndef REFACE_CORE_MODEL_H
#define REFACE_CORE_MODEL_H

#include <stddef.h>

#include "core/result.h"

#ifdef __cplusplus
extern "C" {
#endif

struct model;

struct model_info {
    int half_weights;   /* the file stored float16 weights (now float32) */
    int optimized;      /* optimize_for_inference succeeded */
    char note[256];     /* why optimisation was skipped, if it was */
};

/*
 * Loads a TorchScript module from `len` bytes at `bytes` (copied; the caller
 * keeps its buffer), puts it in eval mode, converts float16 weights to
 * float32 (libtorch 1.13 has no fast half kernels on CPU), sets `threads`
 * intra-op threads for this process, and freezes and optimises it for
 * inference. Returns NULL with a reason in `err` on failure.
 */
struct model *model_load(const void *bytes, size_t len, int threads,
                         struct model_info *info, char *err, size_t errlen);

/* Frees the module; NULL is allowed. */
void model_free(struct model *m);

/*
 * Runs forward() on `batch` images of float32 [3, size, size] laid end to
 * end at `input` (borrowed). The output must be one tensor [batch, C] or a
 * tuple of C tensors with `batch` elements each; it is written row by row
 * into `out` (capacity `out_cap` floats) and C into `*cols`. Returns
 * RF_ERR_MODEL if libtorch throws, RF_ERR_CONTRACT for an output of another
 * shape or type, or too large for `out`.
 */
enum rf_result model_forward(struct model *m, const float *input, int batch,
                             int size, float *out, size_t out_cap, int *cols,
                             char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
