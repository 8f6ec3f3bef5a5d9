#include "trainer_graph.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace steer::train {

// Activation checkpointing: trainer::backward_plain keeps every block's activations alive until the backward pass
// uses them (for Gemma 3 270M and 256 tokens, ~400 MB). Here a forward pass keeps only the input of each run of
// consecutive blocks; the last run and the loss head go forward and backward in one graph and give the gradient of
// that run's input; then each earlier run, from the last, is computed again from its input and backpropagated in one
// graph, handing the gradient of its input to the run before. One run's activations at a time, for computing all
// runs but the last again.
//
// Every block (backward_checkpointed): one run per block and the head alone last, one forward pass more for one
// block's activations at a time.
float trainer::backward_checkpointed(const example & e, const loss_weights & w, const reference & ref, float loss_scale) {
    const int L = model_.n_layer;
    std::vector<int> bounds;
    for (int l = lora_->first_layer(); l <= L; l++) {
        bounds.push_back(l);
    }
    bounds.push_back(L);  // the last run holds no block: the head alone
    return backward_runs(e, w, ref, loss_scale, bounds);
}

// In `segments` runs (at most one per block; the first runs one block longer where they do not divide evenly), the
// last with the head: (segments - 1) / segments of a forward pass more.
float trainer::backward_segments(const example & e, const loss_weights & w, const reference & ref, float loss_scale, int segments) {
    const int first = lora_->first_layer(), n = model_.n_layer - first;
    const int k = std::min(segments, n);
    if (k < 2) {
        return backward_plain(e, w, ref, loss_scale);  // one run: nothing to compute again
    }
    std::vector<int> bounds(k + 1);
    for (int i = 0; i <= k; i++) {
        bounds[i] = first + i * (n / k) + std::min(i, n % k);
    }
    return backward_runs(e, w, ref, loss_scale, bounds);
}

// Run i is the blocks [bounds[i], bounds[i + 1]); bounds run from the first LoRA block to n_layer, at least two runs.
float trainer::backward_runs(const example & e, const loss_weights & w, const reference & ref, float loss_scale, const std::vector<int> & bounds) {
    const int L = model_.n_layer, k = (int) bounds.size() - 1;
    std::vector<std::vector<float>> xs(k);  // xs[i]: run i's input
    {
        auto g = start(e, w, true, false);
        std::vector<ggml_tensor *> inputs{first_block_input(*g)};
        for (int i = 0; i + 1 < k; i++) {
            inputs.push_back(blocks_between(g->ctx, model_, lora_.get(), g->in, g->T, bounds[i], bounds[i + 1], inputs.back()));
        }
        for (ggml_tensor * x : inputs) {
            ggml_set_output(x);
            ggml_build_forward_expand(g->gf, x);
        }
        allocate(g->gf, "checkpointing forward");
        set_inputs(*g, ref, w);
        compute(g->gf, "checkpointing forward");
        for (int i = 0; i < k; i++) {
            xs[i].resize(ggml_nelements(inputs[i]));
            ggml_backend_tensor_get(inputs[i], xs[i].data(), 0, ggml_nbytes(inputs[i]));
        }
        ggml_backend_sched_reset(sched_);
    }
    auto last = start(e, w, true, false, ref.guard.size() / 2);
    graph & g = *last;
    g.in = attention_inputs(g.ctx, g.T);
    ggml_tensor * run_input = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, g.T);  // the last run's, given
    ggml_set_input(run_input);
    ggml_set_param(run_input);  // its gradient goes to the run before
    head(g, final_norm(g.ctx, model_, blocks_between(g.ctx, model_, lora_.get(), g.in, g.T, bounds[k - 1], L, run_input)),
         w, loss_scale, false, false);
    if (g.loss == nullptr) {
        throw std::invalid_argument("the example has no loss term to train on");
    }
    expand_backward(g.ctx, g.gf, g.loss);
    ggml_tensor * grad_t = ggml_graph_get_grad(g.gf, run_input);
    if (grad_t == nullptr) {
        throw std::runtime_error("the loss does not depend on the last run's input");
    }
    ggml_set_output(grad_t);
    allocate(g.gf, "last run backward");
    set_inputs(g, ref, w);
    ggml_backend_tensor_set(run_input, xs[k - 1].data(), 0, xs[k - 1].size() * sizeof(float));
    compute(g.gf, "last run backward");
    const float loss = scalar(g.loss);
    std::vector<float> grad(xs[k - 1].size());
    ggml_backend_tensor_get(grad_t, grad.data(), 0, grad.size() * sizeof(float));
    ggml_backend_sched_reset(sched_);
    for (int i = k - 2; i >= 0; i--) {
        grad = blocks_backward(g, bounds[i], bounds[i + 1], xs[i], grad);
    }
    return loss;
}

// The blocks [from, to) computed again from their input x, with d loss / d output given, as one graph: adds their
// LoRA tensors' gradients into the accumulators and returns d loss / d x (empty for the first LoRA block's input).
// The seed is sum(output * grad_out), whose gradient is grad_out itself.
std::vector<float> trainer::blocks_backward(const graph & packed, int from, int to, const std::vector<float> & x, const std::vector<float> & grad_out) {
    const int T = packed.T;
    if (x.size() != (size_t) model_.n_embd * T || grad_out.size() != x.size()) {
        throw std::logic_error("blocks_backward: checkpoint or gradient of the wrong size");
    }
    // Room for the tensors of a run of blocks and their backward, as start() gives a whole example's graph.
    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() * 4 + ggml_graph_overhead_custom(GRAPH_SIZE, true), nullptr, true };
    graph g;  // owns the context
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, GRAPH_SIZE, true);
    packed_inputs in = attention_inputs(g.ctx, T);
    ggml_tensor * x_t = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, T);
    ggml_set_input(x_t);
    const bool below = from > lora_->first_layer();  // a block below with LoRA pairs wants this input's gradient
    if (below) {
        ggml_set_param(x_t);  // its gradient goes to the block before
    }
    ggml_tensor * grad_out_t = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, T);
    ggml_set_input(grad_out_t);
    ggml_tensor * out = blocks_between(g.ctx, model_, lora_.get(), in, T, from, to, x_t);
    ggml_tensor * seed = ggml_sum(g.ctx, ggml_mul(g.ctx, out, grad_out_t));
    ggml_build_forward_expand(g.gf, seed);
    expand_backward(g.ctx, g.gf, seed);
    ggml_tensor * grad_x = below ? ggml_graph_get_grad(g.gf, x_t) : nullptr;
    if (below && grad_x == nullptr) {
        throw std::runtime_error("block " + std::to_string(from) + "'s output does not depend on its input");
    }
    if (grad_x) {
        ggml_set_output(grad_x);
    }
    allocate(g.gf, "block backward");
    set_attention_inputs(packed, in);
    ggml_backend_tensor_set(x_t, x.data(), 0, x.size() * sizeof(float));
    ggml_backend_tensor_set(grad_out_t, grad_out.data(), 0, grad_out.size() * sizeof(float));
    compute(g.gf, "block backward");
    std::vector<float> grad_in;
    if (grad_x) {
        grad_in.resize(x.size());
        ggml_backend_tensor_get(grad_x, grad_in.data(), 0, grad_in.size() * sizeof(float));
    }
    ggml_backend_sched_reset(sched_);
    return grad_in;
}

}  // namespace steer::train
