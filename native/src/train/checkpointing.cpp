#include "trainer_graph.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace steer::train {

// Activation checkpointing: trainer::backward keeps every block's activations alive until the backward pass uses
// them (for Gemma 3 270M and 256 tokens, ~400 MB). Here a forward pass keeps only each block's input; then the
// head's backward gives the gradient of the last block's output, and each block, from the last, is computed again
// from its input and backpropagated alone, handing the gradient of its input to the block before. One more
// forward pass in exchange for one block's activations at a time.
float trainer::backward_checkpointed(const example & e, const loss_weights & w, const reference & ref, float loss_scale) {
    // xs[i]: the input of block first + i (the blocks below the first LoRA block need no gradient), then the last output.
    const int L = model_.n_layer, first = lora_->first_layer();
    std::vector<std::vector<float>> xs(L - first + 1);
    {
        auto g = checkpoints_graph(e, w);
        allocate(g->gf, "checkpointing forward");
        set_inputs(*g, ref, w);
        compute(g->gf, "checkpointing forward");
        for (int l = 0; l <= L - first; l++) {
            xs[l].resize(ggml_nelements(g->layer_inputs[l]));
            ggml_backend_tensor_get(g->layer_inputs[l], xs[l].data(), 0, ggml_nbytes(g->layer_inputs[l]));
        }
        ggml_backend_sched_reset(sched_);
    }
    auto head = head_graph(e, w, loss_scale, ref.guard.size() / 2);
    if (head->loss == nullptr) {
        throw std::invalid_argument("the example has no loss term to train on");
    }
    expand_backward(head->ctx, head->gf, head->loss);
    ggml_tensor * grad_t = ggml_graph_get_grad(head->gf, head->last_block_out);
    if (grad_t == nullptr) {
        throw std::runtime_error("the loss does not depend on the last block's output");
    }
    ggml_set_output(grad_t);
    allocate(head->gf, "head backward");
    set_inputs(*head, ref, w);
    ggml_backend_tensor_set(head->last_block_out, xs[L - first].data(), 0, xs[L - first].size() * sizeof(float));
    compute(head->gf, "head backward");
    const float loss = scalar(head->loss);
    std::vector<float> grad(xs[L - first].size());
    ggml_backend_tensor_get(grad_t, grad.data(), 0, grad.size() * sizeof(float));
    ggml_backend_sched_reset(sched_);
    for (int il = L - 1; il >= first; il--) {
        grad = block_backward(*head, il, xs[il - first], grad);
    }
    return loss;
}

// Checkpointing in segments: the LoRA blocks in `segments` runs of consecutive blocks (at most one per block; the
// first runs one block longer where they do not divide evenly). A forward pass keeps only each run's input; the last run and the head
// go forward and backward in one graph (their activations kept, as without checkpointing), then each earlier run,
// from the last, is computed again from its input and backpropagated in one graph. One run's activations at a time
// for (segments - 1) / segments of a forward pass more. Checkpointing every block (backward_checkpointed) saves
// more memory for a whole forward pass more and a graph per block.
float trainer::backward_segments(const example & e, const loss_weights & w, const reference & ref, float loss_scale, int segments) {
    const int L = model_.n_layer, first = lora_->first_layer(), n = L - first;
    const int k = std::min(segments, n);
    if (k < 2) {
        return backward_plain(e, w, ref, loss_scale);  // one run: nothing to compute again
    }
    std::vector<int> bounds(k + 1);  // run i is the blocks [bounds[i], bounds[i + 1]); the first n % k runs one longer
    for (int i = 0; i <= k; i++) {
        bounds[i] = first + i * (n / k) + std::min(i, n % k);
    }
    std::vector<std::vector<float>> xs(k);  // xs[i]: run i's input
    {
        auto g = start(e, w, true, false);
        std::vector<ggml_tensor *> inputs{first_block_input(*g)};
        for (int i = 0; i + 1 < k; i++) {
            inputs.push_back(blocks_between(g->ctx, model_, lora_.get(), g->in, g->T, bounds[i], bounds[i + 1], inputs.back(), nullptr));
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
    head(g, final_norm(g.ctx, model_, blocks_between(g.ctx, model_, lora_.get(), g.in, g.T, bounds[k - 1], L, run_input, nullptr)),
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

// One block computed again from its input x, with d loss / d output given: adds its LoRA tensors' gradients into
// the accumulators and returns d loss / d x. The seed is sum(output * grad_out), whose gradient is grad_out itself.
std::vector<float> trainer::block_backward(const graph & packed, int il, const std::vector<float> & x, const std::vector<float> & grad_out) {
    return blocks_backward(packed, il, il + 1, x, grad_out);
}

// The same for the blocks [from, to) as one graph: their activations at once, one graph instead of to - from.
std::vector<float> trainer::blocks_backward(const graph & packed, int from, int to, const std::vector<float> & x, const std::vector<float> & grad_out) {
    const int T = packed.T;
    if (x.size() != (size_t) model_.n_embd * T || grad_out.size() != x.size()) {
        throw std::logic_error("block_backward: checkpoint or gradient of the wrong size");
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
    ggml_tensor * out = blocks_between(g.ctx, model_, lora_.get(), in, T, from, to, x_t, nullptr);
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
