#include "adamw.h"

#include <cmath>
#include <stdexcept>

namespace steer::train {

adamw::adamw(const std::vector<ggml_tensor *> & params, ggml_backend_t backend) : params_(params) {
    const size_t n = params.size();
    ggml_init_params ip_g = { (n + 1) * ggml_tensor_overhead(), nullptr, true };
    ggml_init_params ip_s = { (2 * n + 3) * ggml_tensor_overhead(), nullptr, true };
    ctx_grads_ = ggml_init(ip_g);
    ctx_state_ = ggml_init(ip_s);
    for (ggml_tensor * p : params) {
        ggml_tensor * g = ggml_dup_tensor(ctx_grads_, p);
        ggml_format_name(g, "%s.grad", p->name);
        grads_.push_back(g);
        grad_by_param_[p] = g;
        m_.push_back(ggml_dup_tensor(ctx_state_, p));
        v_.push_back(ggml_dup_tensor(ctx_state_, p));
    }
    hparams_ = ggml_new_tensor_1d(ctx_state_, GGML_TYPE_F32, 7);
    seed_ = ggml_new_tensor_1d(ctx_state_, GGML_TYPE_F32, 1);
    grads_buf_ = ggml_backend_alloc_ctx_tensors(ctx_grads_, backend);
    state_buf_ = ggml_backend_alloc_ctx_tensors(ctx_state_, backend);
    if (grads_buf_ == nullptr || state_buf_ == nullptr) {
        ggml_backend_buffer_free(grads_buf_);
        ggml_backend_buffer_free(state_buf_);
        ggml_free(ctx_grads_);
        ggml_free(ctx_state_);
        throw std::runtime_error("could not allocate the optimizer state");
    }
    ggml_backend_buffer_clear(grads_buf_, 0);
    ggml_backend_buffer_clear(state_buf_, 0);  // moments start at zero
    const float one = 1.0f;
    ggml_backend_tensor_set(seed_, &one, 0, sizeof one);
}

adamw::~adamw() {
    ggml_backend_buffer_free(grads_buf_);
    ggml_backend_buffer_free(state_buf_);
    ggml_free(ctx_grads_);
    ggml_free(ctx_state_);
}

ggml_tensor * adamw::grad_of(const ggml_tensor * p) const {
    auto it = grad_by_param_.find(p);
    return it == grad_by_param_.end() ? nullptr : it->second;
}

void adamw::zero_grads() {
    ggml_backend_buffer_clear(grads_buf_, 0);
}

double adamw::grad_norm() const {
    double sum = 0;
    std::vector<float> host;
    for (ggml_tensor * g : grads_) {
        host.resize(ggml_nelements(g));
        ggml_backend_tensor_get(g, host.data(), 0, ggml_nbytes(g));
        for (float x : host) {
            sum += (double) x * x;
        }
    }
    return std::sqrt(sum);
}

float adamw::step(ggml_backend_sched_t sched, float learning_rate, float weight_decay, float max_norm, float eps) {
    const double norm = grad_norm();
    if (!std::isfinite(norm)) {
        // Keep the adapter as it was rather than write NaN into it; the caller sees the norm.
        return (float) norm;
    }
    const float clip = (max_norm > 0 && norm > max_norm) ? (float) (max_norm / norm) : 1.0f;
    iter_++;
    const float hp[7] = {learning_rate, beta1, beta2, eps, weight_decay,
                         1.0f / (1.0f - std::pow(beta1, (float) iter_)), 1.0f / (1.0f - std::pow(beta2, (float) iter_))};
    ggml_backend_tensor_set(hparams_, hp, 0, sizeof hp);

    const size_t n = params_.size();
    // nodes: a scale and a step per parameter; leafs: the parameter, its gradient, m, v and the hyperparameters
    const size_t graph_size = 6 * n + 16;
    ggml_init_params ip = { (2 * n + 8) * ggml_tensor_overhead() + ggml_graph_overhead_custom(graph_size, false), nullptr, true };
    ggml_context * ctx = ggml_init(ip);
    ggml_cgraph * gf = ggml_new_graph_custom(ctx, graph_size, false);
    for (size_t i = 0; i < n; i++) {
        ggml_tensor * g = clip == 1.0f ? grads_[i] : ggml_scale(ctx, grads_[i], clip);
        ggml_build_forward_expand(gf, ggml_opt_step_adamw(ctx, params_[i], g, m_[i], v_[i], hparams_));
    }
    ggml_backend_sched_reset(sched);
    const bool ok = ggml_backend_sched_alloc_graph(sched, gf) &&
                    ggml_backend_sched_graph_compute(sched, gf) == GGML_STATUS_SUCCESS;
    ggml_backend_sched_reset(sched);
    ggml_free(ctx);
    if (!ok) {
        throw std::runtime_error("the optimizer step failed");
    }
    return (float) norm;
}

}  // namespace steer::train
