// The trainer's graph of one example and the helpers its parts share (trainer.cpp and loss_head.cpp build it;
// reference.cpp and checkpointing.cpp read it). Internal to native/src/train.
#pragma once

#include "trainer.h"

#include <algorithm>
#include <vector>

namespace steer::train {

inline constexpr int GRAPH_SIZE = 1 << 15;
struct trainer::graph {
    ggml_context * ctx = nullptr;
    ggml_cgraph * gf = nullptr;
    packed_inputs in{};
    packing p;                                             // tokens, positions, branches and which rows learn what
    int T = 0;
    ggml_tensor * rows_l = nullptr, * labels_l = nullptr;  // learn rows and their one-hot next tokens
    ggml_tensor * rows_f = nullptr, * labels_f = nullptr;  // which learn rows start a correction, and their tokens
    ggml_tensor * rows_k = nullptr, * labels_k = nullptr;  // keep rows and the reference's distributions there
    ggml_tensor * keep_entropy = nullptr;                  // the mean entropy of those distributions
    ggml_tensor * rows_a = nullptr, * labels_a = nullptr;  // avoid rows and their one-hot next tokens
    ggml_tensor * one_a = nullptr;                         // [1, avoid rows] of 1 (what 1 - p subtracts from)
    int64_t guard_pairs = 0;                               // the guard's (keep row, token) pairs
    ggml_tensor * guard_at = nullptr, * guard_approved_at = nullptr;  // per pair: its logit, its row's approved token's
    ggml_tensor * guard_weight = nullptr;                  // per pair: 1 / guarded rows, or 0 (not guarded, see set_guard)
    ggml_tensor * rows_r = nullptr, * labels_r = nullptr;  // rejected span
    ggml_tensor * ref_delta = nullptr;                     // beta * (ref logp chosen - ref logp rejected)
    ggml_tensor * dpo_on = nullptr;                        // 1, or 0 for an example without a rejected span
    ggml_tensor * loss = nullptr, * logp_c = nullptr, * logp_r = nullptr, * kl = nullptr;
    ggml_tensor * keep_logits = nullptr;                   // the keep rows' logits (for a reference), or null
    ggml_tensor * learn_argmax = nullptr, * keep_argmax = nullptr;  // predict's outputs, or null
    ggml_tensor * logits_all = nullptr;
    ggml_tensor * kept_input = nullptr;                    // the first LoRA block's input, given (trainer::kept_input)
    const std::vector<float> * kept_input_value = nullptr; // its value: in the trainer's kept inputs, or kept_input_own
    std::vector<float> kept_input_own;
    std::vector<float> mask, mask_swa;                     // [T, T] each (make_masks)

    graph() = default;
    graph(const graph &) = delete;  // it owns ctx, and kept_input_value may point at its own kept_input_own
    graph & operator=(const graph &) = delete;
    ~graph() { ggml_free(ctx); }
};

// Makes `order` gf's nodes, in that order: gf's nodes with the rewrites' new ones among them (recompute.cpp, kept16.cpp).
inline void set_node_order(ggml_cgraph * gf, const std::vector<ggml_tensor *> & order) {
    for (int i = ggml_graph_n_nodes(gf); i < (int) order.size(); i++) {
        ggml_graph_add_node(gf, order[i]);  // grows the node count (and checks the graph's size)
    }
    std::copy(order.begin(), order.end(), ggml_graph_nodes(gf));
}

// After ggml_build_backward_expand: the cheap activations the backward nodes (gf's nodes from n_forward on) read
// are computed again just before their first backward read instead of kept from the forward pass (recompute.cpp).
// attention_blocks: with recompute::attention, the attention of how many blocks, the first in the graph (the lowest)
// first; ALL_BLOCKS: every block's.
void recompute_cheap_activations(ggml_context * ctx, ggml_cgraph * gf, int n_forward, recompute level, int attention_blocks);

// After that: the attention probabilities and the FFN's gate and up outputs the backward pass reads are kept between
// the passes in 16 bits (kept16.cpp).
void keep_activations_in_16_bits(ggml_context * ctx, ggml_cgraph * gf, int n_forward);

// The value of a one-element F32 tensor.
inline float scalar(ggml_tensor * t) {
    float v = 0;
    ggml_backend_tensor_get(t, &v, 0, sizeof v);
    return v;
}

}  // namespace steer::train
