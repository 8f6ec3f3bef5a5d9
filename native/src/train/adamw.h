// AdamW over the LoRA tensors: gradient accumulators the backward graphs add into, one step per batch, and
// clipping of the batch's gradient by its global norm before the step.
//
// Why not ggml-opt: it takes the optimizer step inside the graph of the last example of a batch, so nothing can
// look at the whole batch's gradient first (clipping needs its norm), and it keys its state by node position in
// graphs that we rebuild for every example. The step itself is ggml's GGML_OP_OPT_STEP_ADAMW, as in ggml-opt.
#pragma once

#include "ggml.h"
#include "ggml-backend.h"

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace steer::train {

class adamw {
  public:
    adamw(const std::vector<ggml_tensor *> & params, ggml_backend_t backend);
    ~adamw();
    adamw(const adamw &) = delete;
    adamw & operator=(const adamw &) = delete;

    // The accumulator a backward graph adds d loss / d p into (ggml_build_backward_expand's grad_accs).
    ggml_tensor * grad_of(const ggml_tensor * p) const;
    // d loss / d loss = 1: the accumulator of the loss node, where backpropagation starts.
    ggml_tensor * loss_seed() const { return seed_; }

    void zero_grads();
    // sqrt of the sum of squares of every accumulated gradient
    double grad_norm() const;

    // Scales the accumulated gradient by min(1, max_norm / norm) (max_norm <= 0: no clipping), then takes one
    // AdamW step: p -= lr * m / (sqrt(v) + eps). Returns the norm before clipping. A tiny eps makes every entry
    // move by about lr whatever its gradient (Adam is then close to sign descent); an eps above an entry's
    // gradient scale makes that entry move in proportion to its gradient (momentum SGD with rate lr / eps).
    float step(ggml_backend_sched_t sched, float learning_rate, float weight_decay, float max_norm, float eps);

    float beta1 = 0.9f, beta2 = 0.999f;

  private:
    std::vector<ggml_tensor *> params_, grads_, m_, v_;
    std::unordered_map<const ggml_tensor *, ggml_tensor *> grad_by_param_;
    ggml_tensor * hparams_ = nullptr;  // [alpha, beta1, beta2, eps, wd, 1/(1-beta1^t), 1/(1-beta2^t)]
    ggml_tensor * seed_ = nullptr;
    ggml_context * ctx_grads_ = nullptr, * ctx_state_ = nullptr;
    ggml_backend_buffer_t grads_buf_ = nullptr, state_buf_ = nullptr;
    int64_t iter_ = 0;
};

}  // namespace steer::train
