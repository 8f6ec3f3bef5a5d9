// The largest activations the backward pass reads, kept between the passes in 16 bits instead of 32.
//
// With recompute::elementwise a llama block of 256 tokens still keeps, from its forward pass to its backward pass,
// the attention probabilities (heads x T x T) and the FFN's gate and up outputs (2 x n_ff x T): on SmolLM2 about 80
// of the graph's 126 MiB. keep_activations_in_16_bits() makes the forward pass write a 16-bit copy of each right
// after computing it (the 32-bit tensor is then freed after its last forward reader) and the backward pass read a
// 32-bit copy of that, made just before its first backward reader (alive only within the block's backward pass).
// The forward pass, the loss and what serving computes are unchanged; the gradients are those of activations
// rounded to 16 bits: probabilities (in [0, 1]) in F16, 11 significant bits; gate and up (unbounded: F16 ends at
// 65504) in BF16, 8 significant bits, the range of F32. Mixed-precision training keeps activations so as a rule.
#include "trainer_graph.h"

#include <map>
#include <set>
#include <vector>

namespace steer::train {

namespace {

// The activations worth keeping in 16 bits, and in which type: the attention's softmax output; the FFN gating
// product's inputs, SwiGLU(gate, up) (llama) or GELU(gate) * up (gemma3).
std::map<ggml_tensor *, ggml_type> candidates(ggml_tensor ** nodes, int n_fwd) {
    std::map<ggml_tensor *, ggml_type> c;
    for (int i = 0; i < n_fwd; i++) {
        ggml_tensor * t = nodes[i];
        if (t->op == GGML_OP_SOFT_MAX) {
            c[t] = GGML_TYPE_F16;
        } else if (t->op == GGML_OP_GLU && t->src[1] != nullptr) {
            c[t->src[0]] = c[t->src[1]] = GGML_TYPE_BF16;
        } else if (t->op == GGML_OP_MUL && t->src[0]->op == GGML_OP_UNARY && t->src[0]->src[0] != nullptr) {
            c[t->src[0]->src[0]] = c[t->src[1]] = GGML_TYPE_BF16;
        }
    }
    return c;
}

ggml_tensor * cast(ggml_context * ctx, ggml_tensor * t, ggml_type type, const char * what) {
    ggml_tensor * c = ggml_cast(ctx, t, type);
    c->flags |= GGML_TENSOR_FLAG_COMPUTE;  // what ggml_build_forward_expand marks: the backends skip nodes without it
    ggml_format_name(c, "%s (%s)", t->name, what);
    return c;
}

}  // namespace

void keep_activations_in_16_bits(ggml_context * ctx, ggml_cgraph * gf, int n_fwd) {
    const int n = ggml_graph_n_nodes(gf);
    ggml_tensor ** nodes = ggml_graph_nodes(gf);
    std::map<ggml_tensor *, ggml_type> wanted = candidates(nodes, n_fwd);
    std::set<ggml_tensor *> forward(nodes, nodes + n_fwd);
    // Each candidate the backward pass reads, directly only (one read through a view leaves the tensor as it is),
    // and its first backward reader.
    std::map<ggml_tensor *, int> first_read;
    std::set<ggml_tensor *> through_view;
    for (int i = n_fwd; i < n; i++) {
        for (ggml_tensor * s : nodes[i]->src) {
            if (s == nullptr) {
                continue;
            }
            if (s->view_src != nullptr && wanted.count(s->view_src)) {
                through_view.insert(s->view_src);
            } else if (wanted.count(s) && !first_read.count(s)) {
                first_read[s] = i;
            }
        }
    }
    std::map<ggml_tensor *, ggml_tensor *> narrow;  // kept tensor -> its 16-bit copy
    for (auto & [t, at] : first_read) {
        if (!through_view.count(t) && forward.count(t) && t->type == GGML_TYPE_F32 && ggml_is_contiguous(t) &&
            !(t->flags & GGML_TENSOR_FLAG_OUTPUT)) {
            narrow[t] = nullptr;
        }
    }
    if (narrow.empty()) {
        return;
    }
    std::map<int, std::vector<ggml_tensor *>> widen_at;  // backward index -> the tensors widened just before it
    std::vector<ggml_tensor *> order;
    for (int i = 0; i < n_fwd; i++) {
        order.push_back(nodes[i]);
        if (auto it = narrow.find(nodes[i]); it != narrow.end()) {
            it->second = cast(ctx, nodes[i], wanted[nodes[i]], "16 bits");
            order.push_back(it->second);
            widen_at[first_read[nodes[i]]].push_back(nodes[i]);
        }
    }
    std::map<ggml_tensor *, ggml_tensor *> wide;  // kept tensor -> the 32-bit copy the backward pass reads
    for (int i = n_fwd; i < n; i++) {
        if (auto it = widen_at.find(i); it != widen_at.end()) {
            for (ggml_tensor * t : it->second) {
                wide[t] = cast(ctx, narrow[t], GGML_TYPE_F32, "32 bits again");
                order.push_back(wide[t]);
            }
        }
        for (ggml_tensor *& s : nodes[i]->src) {
            if (auto w = s ? wide.find(s) : wide.end(); w != wide.end()) {
                s = w->second;
            }
        }
        order.push_back(nodes[i]);
    }
    set_node_order(gf, order);
}

}  // namespace steer::train
