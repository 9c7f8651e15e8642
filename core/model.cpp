// The libtorch side of core/model.h. C++17, and the only file that includes
// torch: everything it throws is caught here and turned into a result code.
#include "core/model.h"

#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

struct model {
    torch::jit::Module module;
};

namespace {

void set_error(char *err, size_t errlen, const char *what)
{
    if (err != nullptr && errlen > 0) {
        std::snprintf(err, errlen, "%s", what);
    }
}

// libtorch's messages run over many lines (a C++ backtrace, a TorchScript
// traceback). The first line names the problem for errors of libtorch's
// own; for an exception raised inside the model the first line is a generic
// "operation failed" and the cause is the last line. Keep both, one line.
std::string first_line(const char *what)
{
    std::string s(what);
    size_t nl = s.find('\n');
    if (nl == std::string::npos) {
        return s;
    }
    std::string head = s.substr(0, nl);
    size_t end = s.find_last_not_of(" \n");
    size_t start = s.rfind('\n', end);
    std::string tail = s.substr(start + 1, end - start);
    return tail == head ? head : head + " ... " + tail;
}

bool has_half_weights(const torch::jit::Module &module)
{
    for (const auto &p : module.parameters()) {
        if (p.scalar_type() == torch::kHalf) {
            return true;
        }
    }
    for (const auto &b : module.buffers()) {
        if (b.scalar_type() == torch::kHalf) {
            return true;
        }
    }
    return false;
}

// Turns the float16 parameters and buffers into float32 in place. Module::to
// would convert every buffer, integer ones too (an index buffer then breaks
// index_select), so only the half tensors are touched, as Python's .float()
// does.
void widen_half_tensors(torch::jit::Module &module)
{
    torch::NoGradGuard no_grad;

    for (auto p : module.parameters()) {
        if (p.scalar_type() == torch::kHalf) {
            p.set_data(p.to(torch::kFloat));
        }
    }
    for (auto b : module.buffers()) {
        if (b.scalar_type() == torch::kHalf) {
            b.set_data(b.to(torch::kFloat));
        }
    }
}

// Copies one output tensor's values into column `col` of the row-major
// output, or all columns when it is the whole [batch, C] result.
bool copy_column(const at::Tensor &t, int batch, int col, int cols,
                 float *out)
{
    at::Tensor v = t.to(torch::kFloat).contiguous();

    if (v.numel() != batch) {
        return false;
    }
    const float *src = v.data_ptr<float>();
    for (int i = 0; i < batch; i++) {
        out[(size_t)i * (size_t)cols + (size_t)col] = src[i];
    }
    return true;
}

}  // namespace

extern "C" struct model *model_load(const void *bytes, size_t len,
                                    int threads, struct model_info *info,
                                    char *err, size_t errlen)
{
    struct model *m = nullptr;

    std::memset(info, 0, sizeof(*info));
    try {
        at::set_num_threads(threads);
        // The profiling executor records shapes during the first two runs
        // of every new input shape and only then optimises: each worker's
        // first requests, and the first batch of every new face count,
        // paid for it. The frozen oneDNN graph gains nothing from it (same
        // steady-state time here), so the plain executor runs the graph
        // from the first call. This is libtorch's process-wide switch; the
        // worker is the only user of libtorch in its process.
        torch::jit::getExecutorMode() = false;
        torch::jit::getProfilingMode() = false;

        std::istringstream in(
            std::string(static_cast<const char *>(bytes), len));
        m = new model{torch::jit::load(in, torch::kCPU)};
        m->module.eval();

        if (has_half_weights(m->module)) {
            widen_half_tensors(m->module);
            info->half_weights = 1;
        }

        // Freezing folds the weights into the graph and lets oneDNN pick
        // fast convolutions: several times faster per forward here. Some
        // modules (with attributes freezing cannot inline) refuse; they
        // still run, only slower, and the caller logs the note.
        try {
            m->module = torch::jit::optimize_for_inference(m->module);
            info->optimized = 1;
        } catch (const std::exception &e) {
            std::snprintf(info->note, sizeof(info->note), "%s",
                          first_line(e.what()).c_str());
        }
        return m;
    } catch (const c10::Error &e) {
        set_error(err, errlen, first_line(e.what_without_backtrace()).c_str());
    } catch (const std::exception &e) {
        set_error(err, errlen, first_line(e.what()).c_str());
    } catch (...) {
        set_error(err, errlen, "unknown exception while loading the model");
    }
    delete m;
    return nullptr;
}

extern "C" void model_free(struct model *m)
{
    delete m;
}

extern "C" enum rf_result model_forward(struct model *m, const float *input,
                                        int batch, int size, float *out,
                                        size_t out_cap, int *cols, char *err,
                                        size_t errlen)
{
    try {
        c10::InferenceMode guard;
        // from_blob borrows the caller's buffer; the forward only reads it.
        at::Tensor x = torch::from_blob(const_cast<float *>(input),
                                        {batch, 3, size, size},
                                        torch::kFloat);
        std::vector<torch::jit::IValue> args{x};
        torch::jit::IValue result = m->module.forward(args);

        if (result.isTensor()) {
            at::Tensor t = result.toTensor();
            if (t.dim() != 2 || t.size(0) != batch) {
                std::snprintf(err, errlen,
                              "output tensor has shape %s, expected [%d, C]",
                              c10::str(t.sizes()).c_str(), batch);
                return RF_ERR_CONTRACT;
            }
            int c = static_cast<int>(t.size(1));
            if ((size_t)c * (size_t)batch > out_cap) {
                std::snprintf(err, errlen, "output has %d columns, too many",
                              c);
                return RF_ERR_CONTRACT;
            }
            at::Tensor v = t.to(torch::kFloat).contiguous();
            std::memcpy(out, v.data_ptr<float>(),
                        sizeof(float) * (size_t)c * (size_t)batch);
            *cols = c;
            return RF_OK;
        }

        if (result.isTuple()) {
            const auto &items = result.toTupleRef().elements();
            int c = static_cast<int>(items.size());
            if ((size_t)c * (size_t)batch > out_cap) {
                std::snprintf(err, errlen, "output tuple has %d items, too many",
                              c);
                return RF_ERR_CONTRACT;
            }
            for (int i = 0; i < c; i++) {
                if (!items[i].isTensor() ||
                    !copy_column(items[i].toTensor(), batch, i, c, out)) {
                    std::snprintf(err, errlen,
                                  "output tuple item %d is not a tensor of "
                                  "%d values", i, batch);
                    return RF_ERR_CONTRACT;
                }
            }
            *cols = c;
            return RF_OK;
        }

        std::snprintf(err, errlen, "output is %s, expected a tensor or tuple",
                      result.tagKind().c_str());
        return RF_ERR_CONTRACT;
    } catch (const c10::Error &e) {
        set_error(err, errlen, first_line(e.what_without_backtrace()).c_str());
    } catch (const std::exception &e) {
        set_error(err, errlen, first_line(e.what()).c_str());
    } catch (...) {
        set_error(err, errlen, "unknown exception in forward");
    }
    return RF_ERR_MODEL;
}
