// Cheap activations computed again where the backward pass reads them, instead of kept from the forward pass.
//
// ggml's autodiff (ggml_build_backward_expand) makes backward nodes read forward tensors, so the graph allocator
// keeps each such tensor from its forward computation to its last backward read: the whole forward pass's
// activations are alive when the backward pass starts. Some of them cost next to nothing to compute again from
// tensors the backward pass keeps anyway. recompute::elementwise (the default):
//   - the gated FFN product, SwiGLU(gate, up) or GELU(gate) * up: gate and up are kept for its own gradient;
//   - an RMS-normed matmul input (what LoRA A's gradient reads): the residual is kept for the norm's gradient.
// recompute::attention, also:
//   - the attention probabilities softmax(K^T Q): K and Q are kept for the KQ matmul's own gradient (on a llama
//     block of 256 tokens the largest activation, heads x T x T), and the heads' merged output P V, read by
//     attn_output's LoRA A gradient (V^T is kept for the gradient of P). Two small matmuls again per block; or in the
//     lowest N blocks only (attention_blocks): each saves its probabilities and merged heads (SmolLM2, 256 tokens:
//     2.8 MiB) for its share of the time, so a trainer spends only the time for the memory it must save.
// recompute_cheap_activations() makes a copy of each such tensor just before the first backward node that reads it
// (the same op on the same sources, so the same bits) and points the backward reads at the copy; the forward tensor
// is then freed after its last forward use, and the copy lives only between its backward reads (within one block).
//
// A tensor is computed again only when every source of its copy is alive at that point anyway (a weight, or a tensor
// the backward pass reads there or later), so no activation is held longer than before (the attention masks, inputs,
// are: T x T floats each, through the backward pass), and the copies' intermediates (K^T Q, P V, an unweighted norm)
// exist only while a block's backward pass needs them; and only
// through cheap ops (elementwise, norms, softmax, views, and with recompute::attention a matmul of two activations).
// A copy made for one reader serves the later ones. ggml has no public call that copies a node, so the copy is a new
// tensor given the original's op, parameters and sources (and the COMPUTE flag the graph builder sets).
#include "trainer_graph.h"

#include <cstring>
#include <map>
#include <set>
#include <vector>

namespace steer::train {

namespace {

const ggml_tensor * root(const ggml_tensor * t) {
    return t->view_src ? t->view_src : t;
}

// A tensor that exists before the graph runs (a weight, a LoRA parameter) or is set from outside (an input): always there.
bool outside_the_graph(const ggml_tensor * t) {
    return root(t)->buffer != nullptr || (t->flags & GGML_TENSOR_FLAG_INPUT) || t->op == GGML_OP_NONE;
}

// attention_matmuls: the products of two activations that may be computed again (null: all of them).
bool cheap(const ggml_tensor * t, recompute level, const std::set<const ggml_tensor *> * attention_matmuls) {
    switch (t->op) {
        case GGML_OP_SOFT_MAX:
        case GGML_OP_GLU:
        case GGML_OP_UNARY:
        case GGML_OP_MUL:
        case GGML_OP_SCALE:
        case GGML_OP_RMS_NORM:
        case GGML_OP_CONT:
            return true;
        case GGML_OP_MUL_MAT:  // of two activations (attention); a weight's matmul is what costs
            return level == recompute::attention && !outside_the_graph(t->src[0]) && !outside_the_graph(t->src[1]) &&
                   (attention_matmuls == nullptr || attention_matmuls->count(t));
        default:
            return false;
    }
}

struct rewriter {
    ggml_context * ctx;
    recompute level;
    const std::set<const ggml_tensor *> * attention_matmuls;
    std::map<const ggml_tensor *, int> last_read;      // forward root -> index of its last backward read
    std::set<const ggml_tensor *> recomputed;           // the forward tensors computed again
    std::vector<ggml_tensor *> made_here;               // the copies made at one insertion point, in order
    std::map<const ggml_tensor *, ggml_tensor *> copies;  // forward tensor -> its copy, made once

    // Whether t can be computed again at backward index `at` from sources alive there (make false: a non-null answer
    // says yes), or its copy there (make true: the copies it needs are appended to made_here in order).
    ggml_tensor * copy(ggml_tensor * t, int at, bool make, int depth = 0) {
        if (outside_the_graph(t)) {
            return t;
        }
        if (!recomputed.count(root(t))) {  // kept: usable if the backward pass still reads it at `at` or later
            auto it = last_read.find(root(t));
            if (it != last_read.end() && it->second >= at) {
                return t;
            }
        }
        if (make && copies.count(t)) {
            return copies[t];  // made for an earlier reader: still alive, the allocator sees it read here
        }
        // The chains worth computing again are short (the merged heads: cont <- permute <- P V <- softmax <- K^T Q).
        if (depth > 6 || (t->flags & GGML_TENSOR_FLAG_OUTPUT)) {
            return nullptr;
        }
        if (t->view_src != nullptr) {  // a view of a tensor computed again: the same view of its copy
            const bool pure_view = t->op == GGML_OP_VIEW || t->op == GGML_OP_RESHAPE || t->op == GGML_OP_PERMUTE ||
                                   t->op == GGML_OP_TRANSPOSE;  // not an in-place op, which also has a view_src
            if (!pure_view || t->nb[0] != ggml_type_size(t->type)) {
                return nullptr;
            }
            ggml_tensor * src = copy(t->view_src, at, make, depth + 1);
            if (!src || !make) {
                return src;
            }
            ggml_tensor * c = ggml_view_4d(ctx, src, t->ne[0], t->ne[1], t->ne[2], t->ne[3], t->nb[1], t->nb[2], t->nb[3], t->view_offs);
            return made_copy(t, c);
        }
        if (!cheap(t, level, attention_matmuls) || !ggml_is_contiguous(t)) {
            return nullptr;
        }
        ggml_tensor * srcs[GGML_MAX_SRC] = {};
        for (int i = 0; i < GGML_MAX_SRC; i++) {
            if (t->src[i] && !(srcs[i] = copy(t->src[i], at, make, depth + 1))) {
                return nullptr;
            }
        }
        if (!make) {
            return t;  // any non-null: feasible
        }
        ggml_tensor * c = ggml_new_tensor(ctx, t->type, GGML_MAX_DIMS, t->ne);
        c->op = t->op;
        std::memcpy(c->op_params, t->op_params, sizeof c->op_params);
        std::memcpy(c->src, srcs, sizeof c->src);
        return made_copy(t, c);
    }

    ggml_tensor * made_copy(const ggml_tensor * t, ggml_tensor * c) {
        c->flags |= GGML_TENSOR_FLAG_COMPUTE;  // what ggml_build_forward_expand marks: the backends skip nodes without it
        ggml_format_name(c, "%s (again)", t->name);
        made_here.push_back(c);
        copies[t] = c;
        return c;
    }
};

}  // namespace

// The products of two activations in the attention of the first `blocks` blocks of the forward pass: each block's
// attention has one softmax, K^T Q its source and P V its reader.
static std::set<const ggml_tensor *> attention_matmuls_of(ggml_tensor ** nodes, int n_fwd, int blocks) {
    std::set<const ggml_tensor *> softmaxes, matmuls;
    for (int i = 0; i < n_fwd && (int) softmaxes.size() < blocks; i++) {
        if (nodes[i]->op == GGML_OP_SOFT_MAX) {
            softmaxes.insert(nodes[i]);
            if (nodes[i]->src[0]->op == GGML_OP_MUL_MAT) {
                matmuls.insert(nodes[i]->src[0]);
            }
        }
    }
    for (int i = 0; i < n_fwd; i++) {
        if (nodes[i]->op == GGML_OP_MUL_MAT && (softmaxes.count(nodes[i]->src[0]) || softmaxes.count(nodes[i]->src[1]))) {
            matmuls.insert(nodes[i]);
        }
    }
    return matmuls;
}

void recompute_cheap_activations(ggml_context * ctx, ggml_cgraph * gf, int n_fwd, recompute level, int attention_blocks) {
    if (level == recompute::none) {
        return;
    }
    const int n = ggml_graph_n_nodes(gf);
    ggml_tensor ** nodes = ggml_graph_nodes(gf);
    const bool some_blocks = level == recompute::attention && attention_blocks != ALL_BLOCKS;
    const std::set<const ggml_tensor *> some = some_blocks ? attention_matmuls_of(nodes, n_fwd, attention_blocks) : std::set<const ggml_tensor *>{};
    rewriter r{ctx, level, some_blocks ? &some : nullptr, {}, {}, {}, {}};
    std::map<const ggml_tensor *, int> first_read;  // forward tensor read directly -> its first backward reader
    std::set<const ggml_tensor *> forward(nodes, nodes + n_fwd), through_view;
    for (int i = n_fwd; i < n; i++) {
        for (ggml_tensor * s : nodes[i]->src) {
            if (s && forward.count(root(s))) {
                r.last_read[root(s)] = i;
                if (s->view_src) {
                    through_view.insert(root(s));  // read through a view: left alone
                } else if (!first_read.count(s)) {
                    first_read[s] = i;
                }
            }
        }
    }
    // Candidates: cheap forward tensors the backward pass reads directly (not through a view). Drop those whose copy
    // would need something not alive there, until none is dropped: a dropped one is kept, which can only make more
    // sources available to the others. A candidate among another's sources is computed again inside its copy.
    for (const auto & [t, at] : first_read) {
        if (!through_view.count(t) && cheap(t, level, r.attention_matmuls) && !(t->flags & GGML_TENSOR_FLAG_OUTPUT) && ggml_is_contiguous(t)) {
            r.recomputed.insert(t);
        }
    }
    for (bool dropped = true; dropped;) {
        dropped = false;
        for (auto it = r.recomputed.begin(); it != r.recomputed.end();) {
            if (r.copy(const_cast<ggml_tensor *>(*it), first_read[*it], false)) {
                ++it;
            } else {
                it = r.recomputed.erase(it);
                dropped = true;
            }
        }
    }
    if (r.recomputed.empty()) {
        return;
    }
    // The new order: each copy just before its tensor's first backward reader; the readers point at the copies.
    std::map<int, std::vector<const ggml_tensor *>> at;  // in forward order (r.recomputed is ordered by address)
    for (int i = 0; i < n_fwd; i++) {
        if (r.recomputed.count(nodes[i])) {
            at[first_read[nodes[i]]].push_back(nodes[i]);
        }
    }
    std::vector<ggml_tensor *> order(nodes, nodes + n_fwd);
    for (int i = n_fwd; i < n; i++) {
        if (auto it = at.find(i); it != at.end()) {
            for (const ggml_tensor * t : it->second) {
                r.made_here.clear();
                r.copy(const_cast<ggml_tensor *>(t), i, true);
                order.insert(order.end(), r.made_here.begin(), r.made_here.end());
            }
        }
        for (ggml_tensor *& s : nodes[i]->src) {
            if (auto c = s && r.recomputed.count(s) ? r.copies.find(s) : r.copies.end(); c != r.copies.end()) {
                s = c->second;
            }
        }
        order.push_back(nodes[i]);
    }
    set_node_order(gf, order);
}

}  // namespace steer::train
