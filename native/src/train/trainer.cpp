#include "trainer.h"

#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace steer::train {

static const int GRAPH_SIZE = 1 << 15;
static const int32_t SHARED = -1;  // sequence id of the packed context, which both spans see

struct trainer::graph {
    ggml_context * ctx = nullptr;
    ggml_cgraph * gf = nullptr;
    packed_inputs in{};
    int T = 0;
    ggml_tensor * rows_c = nullptr, * labels_c = nullptr;  // chosen span: hidden rows and one-hot next tokens
    ggml_tensor * rows_r = nullptr, * labels_r = nullptr;  // rejected span
    ggml_tensor * ref_delta = nullptr;                     // beta * (ref logp chosen - ref logp rejected)
    ggml_tensor * dpo_on = nullptr;                        // 1, or 0 for an example without a rejected span
    bool placeholder_rejected = false;                     // the rejected span is a stand-in (see build)
    ggml_tensor * loss = nullptr, * logp_c = nullptr, * logp_r = nullptr, * logits_all = nullptr;
    ggml_tensor * last_block_out = nullptr;                // body::given: the input that stands for all blocks
    std::vector<ggml_tensor *> layer_inputs;               // body::blocks_keeping_inputs: x_0 .. x_{n_layer}
    std::vector<int32_t> tokens, positions, seq;           // seq: SHARED (context), 0 (chosen) or 1 (rejected)
    std::vector<float> mask, mask_swa;                     // [T, T] each, from positions and seq (make_masks)
    std::vector<int32_t> span_c, next_c, span_r, next_r;   // rows whose next token is in the span, and those tokens

    ~graph() { ggml_free(ctx); }
};

trainer::trainer(const llama_model * model, const std::vector<std::string> & targets, int rank, float alpha, uint32_t seed, int n_threads)
        : model_(read_model_view(model)) {
    if (n_threads < 1) {
        throw std::invalid_argument("threads must be >= 1");
    }
    // Train where the weights are: a GPU device if serving offloaded them there, and the CPU for the rest (the
    // scheduler wants the CPU last). The LoRA tensors and optimizer state live on the first of them.
    std::vector<ggml_backend_dev_t> devices;
    for (const auto & [name, w] : model_.weights) {
        if (w->buffer == nullptr) {
            continue;
        }
        ggml_backend_dev_t dev = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(w->buffer));
        if (dev != nullptr && ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_CPU &&
            std::find(devices.begin(), devices.end(), dev) == devices.end()) {
            devices.push_back(dev);
        }
    }
    for (ggml_backend_dev_t dev : devices) {
        ggml_backend_t b = ggml_backend_dev_init(dev, nullptr);
        if (b == nullptr) {
            release();
            throw std::runtime_error(std::string("could not start a backend on ") + ggml_backend_dev_name(dev));
        }
        backends_.push_back(b);
    }
    // A constructor that throws runs no destructor: free what was made (bad rank, alpha or targets throw here).
    try {
        ggml_backend_t cpu = ggml_backend_cpu_init();
        ggml_backend_cpu_set_n_threads(cpu, n_threads);
        backends_.push_back(cpu);
        sched_ = ggml_backend_sched_new(backends_.data(), nullptr, (int) backends_.size(), GRAPH_SIZE, false, true);
        lora_ = std::make_unique<lora_set>(model_, targets, rank, alpha, backends_.front());
        lora_->init(seed);
        opt_ = std::make_unique<adamw>(lora_->params(), backends_.front());
    } catch (...) {
        release();
        throw;
    }
}

trainer::~trainer() {
    release();
}

void trainer::release() {
    opt_.reset();
    lora_.reset();
    if (sched_ != nullptr) {
        ggml_backend_sched_free(sched_);
        sched_ = nullptr;
    }
    for (ggml_backend_t b : backends_) {
        ggml_backend_free(b);
    }
    backends_.clear();
}

static void check_tokens(const model_view & m, const std::vector<int32_t> & t, const char * what) {
    for (int32_t x : t) {
        if (x < 0 || x >= m.n_vocab) {
            throw std::invalid_argument(std::string(what) + " holds token " + std::to_string(x) + ", outside the vocabulary");
        }
    }
}

std::unique_ptr<trainer::graph> trainer::build(const example & e, const loss_weights & w, bool use_lora, bool for_training, float loss_scale,
                                                body b) {
    check_tokens(model_, e.context, "context");
    check_tokens(model_, e.chosen, "chosen");
    check_tokens(model_, e.rejected, "rejected");
    if (e.context.empty() || e.chosen.empty()) {
        throw std::invalid_argument("an example needs a context and a chosen span");
    }
    auto g = std::make_unique<graph>();
    // In training with a preference term, an example without a rejected span gets a one-token stand-in whose term is
    // switched off by an input (dpo_on = 0): every training graph of a job then has the same loss terms.
    bool with_rejected = !e.rejected.empty();
    const std::vector<int32_t> stand_in = { e.chosen.empty() ? 0 : e.chosen[0] };
    if (!with_rejected && for_training && w.dpo > 0) {
        with_rejected = true;
        g->placeholder_rejected = true;
    }
    const std::vector<int32_t> & rejected = g->placeholder_rejected ? stand_in : e.rejected;
    // The context is packed once and both spans follow it: [context | chosen | rejected]. Each span's positions
    // continue from the end of the context, and the mask lets a span see the context and itself but never the other
    // span (a two-branch tree), so each span is computed exactly as if it followed the context alone, while the
    // context's tokens are computed once instead of twice.
    const int32_t n_ctx = (int32_t) e.context.size();
    auto append = [&](const std::vector<int32_t> & t, int32_t first_pos, int32_t seq) {
        for (size_t i = 0; i < t.size(); i++) {
            g->tokens.push_back(t[i]);
            g->positions.push_back(first_pos + (int32_t) i);
            g->seq.push_back(seq);
        }
    };
    // The rows whose next token is span[i]: the context's last row for the first, then the span's own rows.
    auto span_rows = [&](const std::vector<int32_t> & span, int32_t start, std::vector<int32_t> & rows, std::vector<int32_t> & next) {
        for (size_t i = 0; i < span.size(); i++) {
            rows.push_back(i == 0 ? n_ctx - 1 : start + (int32_t) i - 1);
            next.push_back(span[i]);
        }
    };
    append(e.context, 0, SHARED);
    span_rows(e.chosen, (int32_t) g->tokens.size(), g->span_c, g->next_c);
    append(e.chosen, n_ctx, 0);
    if (with_rejected) {
        span_rows(rejected, (int32_t) g->tokens.size(), g->span_r, g->next_r);
        append(rejected, n_ctx, 1);
    }
    g->T = (int) g->tokens.size();
    const size_t longest = n_ctx + std::max(e.chosen.size(), with_rejected ? rejected.size() : 0);
    if (model_.n_ctx_orig > 0 && longest > (size_t) model_.n_ctx_orig) {
        throw std::invalid_argument("the example is longer than the model's trained context");
    }
    make_masks(*g);

    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() * 4 + ggml_graph_overhead_custom(GRAPH_SIZE, true), nullptr, true };
    g->ctx = ggml_init(ip);
    ggml_context * ctx = g->ctx;
    g->gf = ggml_new_graph_custom(ctx, GRAPH_SIZE, for_training);
    ggml_tensor * hidden = nullptr;
    if (b == body::given) {
        // The head of a checkpointed backward: the last block's output is an input whose gradient we want.
        g->last_block_out = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, model_.n_embd, g->T);
        ggml_set_input(g->last_block_out);
        ggml_set_param(g->last_block_out);
        hidden = final_norm(ctx, model_, g->last_block_out);
    } else {
        if (use_lora) {
            // The parameters come first, in a fixed order (A then B per target, layers in order).
            for (ggml_tensor * p : lora_->params()) {
                ggml_build_forward_expand(g->gf, p);
            }
        }
        g->in = attention_inputs(ctx, g->T);
        g->in.tokens = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, g->T);
        ggml_set_input(g->in.tokens);
        hidden = hidden_states(ctx, model_, use_lora ? lora_.get() : nullptr, g->in, g->T,
                               b == body::blocks_keeping_inputs ? &g->layer_inputs : nullptr);
        if (b == body::blocks_keeping_inputs) {
            // The checkpoints outlive the graph's other activations; the loss is left to the head's graph.
            for (ggml_tensor * x : g->layer_inputs) {
                ggml_set_output(x);
                ggml_build_forward_expand(g->gf, x);
            }
            return g;
        }
    }

    // Cross-entropy over a span: the LM head runs only on the rows that predict it (a 262k vocabulary is costly).
    auto span_ce = [&](const std::vector<int32_t> & rows, ggml_tensor ** rows_t, ggml_tensor ** labels_t) {
        *rows_t = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, (int64_t) rows.size());
        *labels_t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, model_.n_vocab, (int64_t) rows.size());
        ggml_set_input(*rows_t);
        ggml_set_input(*labels_t);
        ggml_tensor * logits = lm_logits(ctx, model_, ggml_get_rows(ctx, hidden, *rows_t));
        return ggml_cross_entropy_loss(ctx, logits, *labels_t);  // mean over the rows
    };
    ggml_tensor * ce_c = span_ce(g->span_c, &g->rows_c, &g->labels_c);
    g->logp_c = ggml_scale(ctx, ce_c, -(float) g->span_c.size());  // sum of log p(chosen token)
    ggml_tensor * loss = ggml_scale(ctx, ce_c, w.nll);
    if (with_rejected) {
        ggml_tensor * ce_r = span_ce(g->span_r, &g->rows_r, &g->labels_r);
        g->logp_r = ggml_scale(ctx, ce_r, -(float) g->span_r.size());
        if (w.dpo > 0) {
            g->ref_delta = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
            ggml_set_input(g->ref_delta);
            g->dpo_on = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
            ggml_set_input(g->dpo_on);
            ggml_tensor * z = ggml_sub(ctx, ggml_scale(ctx, ggml_sub(ctx, g->logp_c, g->logp_r), w.beta), g->ref_delta);
            ggml_tensor * dpo = ggml_mul(ctx, ggml_softplus(ctx, ggml_neg(ctx, z)), g->dpo_on);  // -log sigmoid(z)
            loss = ggml_add(ctx, loss, ggml_scale(ctx, dpo, w.dpo));
        }
        ggml_set_output(g->logp_r);
        ggml_build_forward_expand(g->gf, g->logp_r);
    }
    g->loss = ggml_scale(ctx, loss, loss_scale);
    ggml_set_output(g->logp_c);
    ggml_set_output(g->loss);
    ggml_build_forward_expand(g->gf, g->logp_c);
    ggml_build_forward_expand(g->gf, g->loss);
    return g;
}

packed_inputs trainer::attention_inputs(ggml_context * ctx, int T) const {
    packed_inputs in{};
    in.positions = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T);
    in.mask      = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, T, T);
    ggml_set_input(in.positions);
    ggml_set_input(in.mask);
    if (model_.n_swa > 0) {
        in.mask_swa = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, T, T);
        ggml_set_input(in.mask_swa);
    }
    return in;
}

// Which keys each query row may see: same branch (or the shared context) and not later; sliding-window layers
// also hide keys n_swa or more positions back (as llama.cpp's is_masked_swa). Built once per example: every block
// graph of a checkpointed backward uploads the same ones.
void trainer::make_masks(graph & g) const {
    const int T = g.T;
    g.mask.assign((size_t) T * T, 0.0f);
    for (int q = 0; q < T; q++) {
        for (int k = 0; k < T; k++) {
            const bool same_branch = g.seq[k] == g.seq[q] || g.seq[k] == SHARED;
            g.mask[(size_t) q * T + k] = (same_branch && g.positions[k] <= g.positions[q]) ? 0.0f : -INFINITY;
        }
    }
    if (model_.n_swa > 0) {
        g.mask_swa = g.mask;
        for (int q = 0; q < T; q++) {
            for (int k = 0; k < T; k++) {
                if (g.positions[q] - g.positions[k] >= model_.n_swa) {
                    g.mask_swa[(size_t) q * T + k] = -INFINITY;
                }
            }
        }
    }
}

void trainer::set_attention_inputs(const graph & g, const packed_inputs & in) const {
    ggml_backend_tensor_set(in.positions, g.positions.data(), 0, g.T * sizeof(int32_t));
    // A graph of one block uses one of the two masks; the other was never allocated.
    if (in.mask->buffer) {
        ggml_backend_tensor_set(in.mask, g.mask.data(), 0, g.mask.size() * sizeof(float));
    }
    if (in.mask_swa && in.mask_swa->buffer) {
        ggml_backend_tensor_set(in.mask_swa, g.mask_swa.data(), 0, g.mask_swa.size() * sizeof(float));
    }
}

void trainer::set_inputs(graph & g, const example &, const reference & ref, const loss_weights & w) {
    if (g.in.tokens) {
        ggml_backend_tensor_set(g.in.tokens, g.tokens.data(), 0, g.T * sizeof(int32_t));
        set_attention_inputs(g, g.in);
    }
    auto set_span = [&](ggml_tensor * rows_t, ggml_tensor * labels_t, const std::vector<int32_t> & rows, const std::vector<int32_t> & next) {
        if (rows_t == nullptr) {
            return;
        }
        ggml_backend_tensor_set(rows_t, rows.data(), 0, rows.size() * sizeof(int32_t));
        std::vector<float> onehot((size_t) model_.n_vocab * rows.size(), 0.0f);
        for (size_t i = 0; i < rows.size(); i++) {
            onehot[i * model_.n_vocab + next[i]] = 1.0f;
        }
        ggml_backend_tensor_set(labels_t, onehot.data(), 0, onehot.size() * sizeof(float));
    };
    set_span(g.rows_c, g.labels_c, g.span_c, g.next_c);
    set_span(g.rows_r, g.labels_r, g.span_r, g.next_r);
    if (g.ref_delta) {
        const float d = g.placeholder_rejected ? 0.0f : w.beta * (ref.logp_chosen - ref.logp_rejected);
        ggml_backend_tensor_set(g.ref_delta, &d, 0, sizeof d);
        const float on = g.placeholder_rejected ? 0.0f : 1.0f;
        ggml_backend_tensor_set(g.dpo_on, &on, 0, sizeof on);
    }
}

static float scalar(ggml_tensor * t) {
    float v = 0;
    ggml_backend_tensor_get(t, &v, 0, sizeof v);
    return v;
}

std::vector<float> trainer::logits(const std::vector<int32_t> & tokens, bool use_lora) {
    check_tokens(model_, tokens, "tokens");
    if (tokens.empty()) {
        throw std::invalid_argument("no tokens");
    }
    graph g;
    g.T = (int) tokens.size();
    g.tokens = tokens;
    for (int i = 0; i < g.T; i++) {
        g.positions.push_back(i);
        g.seq.push_back(0);
    }
    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() + ggml_graph_overhead_custom(GRAPH_SIZE, false), nullptr, true };
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, GRAPH_SIZE, false);
    make_masks(g);
    g.in = attention_inputs(g.ctx, g.T);
    g.in.tokens = ggml_new_tensor_1d(g.ctx, GGML_TYPE_I32, g.T);
    ggml_set_input(g.in.tokens);
    g.logits_all = lm_logits(g.ctx, model_, hidden_states(g.ctx, model_, use_lora ? lora_.get() : nullptr, g.in, g.T));
    ggml_set_output(g.logits_all);
    ggml_build_forward_expand(g.gf, g.logits_all);
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, g.gf)) {
        throw std::runtime_error("could not allocate the forward graph");
    }
    set_inputs(g, example{}, reference{}, loss_weights{});
    compute(g.gf, "forward");
    std::vector<float> out(ggml_nelements(g.logits_all));
    ggml_backend_tensor_get(g.logits_all, out.data(), 0, out.size() * sizeof(float));
    return out;
}

evaluation trainer::evaluate(const example & e, const loss_weights & w, const reference & ref, bool use_lora) {
    auto g = build(e, w, use_lora, false, 1.0f, body::blocks);
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, g->gf)) {
        throw std::runtime_error("could not allocate the evaluation graph");
    }
    set_inputs(*g, e, ref, w);
    compute(g->gf, "evaluation");
    evaluation ev;
    ev.loss = scalar(g->loss);
    ev.logp_chosen = scalar(g->logp_c);
    ev.logp_rejected = g->logp_r ? scalar(g->logp_r) : 0.0f;
    return ev;
}

reference trainer::reference_logps(const example & e) {
    evaluation ev = evaluate(e, loss_weights{}, reference{}, false);
    return reference{ev.logp_chosen, ev.logp_rejected};
}

// Which nodes' gradients go where: the LoRA tensors' into the optimizer's accumulators, the loss's from the seed 1.
void trainer::expand_backward(ggml_context * ctx, ggml_cgraph * gf, ggml_tensor * loss) {
    ggml_set_loss(loss);
    const int n_nodes = ggml_graph_n_nodes(gf);
    std::vector<ggml_tensor *> accs(n_nodes, nullptr);
    for (int i = 0; i < n_nodes; i++) {
        ggml_tensor * node = ggml_graph_node(gf, i);
        if ((node->flags & GGML_TENSOR_FLAG_PARAM) && lora_->owns(node)) {
            accs[i] = opt_->grad_of(node);
        } else if (node == loss) {
            accs[i] = opt_->loss_seed();
        }
    }
    ggml_build_backward_expand(ctx, gf, accs.data());
}

void trainer::compute(ggml_cgraph * gf, const char * what) {
    if (ggml_backend_sched_graph_compute(sched_, gf) != GGML_STATUS_SUCCESS) {
        ggml_backend_sched_reset(sched_);
        throw std::runtime_error(std::string("the ") + what + " graph failed");
    }
}

void trainer::allocate(ggml_cgraph * gf, const char * what) {
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, gf)) {
        throw std::runtime_error(std::string("could not allocate the ") + what + " graph");
    }
}

float trainer::backward(const example & e, const loss_weights & w, const reference & ref, float loss_scale) {
    if (checkpointing_) {
        return backward_checkpointed(e, w, ref, loss_scale);
    }
    auto g = build(e, w, true, true, loss_scale, body::blocks);
    expand_backward(g->ctx, g->gf, g->loss);
    allocate(g->gf, "backward");
    set_inputs(*g, e, ref, w);
    compute(g->gf, "backward");
    const float loss = scalar(g->loss);
    ggml_backend_sched_reset(sched_);
    return loss;
}

// Activation checkpointing: the backward above keeps every block's activations alive until the backward pass uses
// them (for Gemma 3 270M and 256 tokens, ~400 MB). Here a forward pass keeps only each block's input; then the
// head's backward gives the gradient of the last block's output, and each block, from the last, is computed again
// from its input and backpropagated alone, handing the gradient of its input to the block before. One more
// forward pass in exchange for one block's activations at a time.
float trainer::backward_checkpointed(const example & e, const loss_weights & w, const reference & ref, float loss_scale) {
    const int L = model_.n_layer;
    std::vector<std::vector<float>> xs(L + 1);
    {
        auto g = build(e, w, true, true, loss_scale, body::blocks_keeping_inputs);
        allocate(g->gf, "checkpointing forward");
        set_inputs(*g, e, ref, w);
        compute(g->gf, "checkpointing forward");
        for (int l = 0; l <= L; l++) {
            xs[l].resize(ggml_nelements(g->layer_inputs[l]));
            ggml_backend_tensor_get(g->layer_inputs[l], xs[l].data(), 0, ggml_nbytes(g->layer_inputs[l]));
        }
        ggml_backend_sched_reset(sched_);
    }
    auto head = build(e, w, true, true, loss_scale, body::given);
    expand_backward(head->ctx, head->gf, head->loss);
    ggml_tensor * grad_t = ggml_graph_get_grad(head->gf, head->last_block_out);
    if (grad_t == nullptr) {
        throw std::runtime_error("the loss does not depend on the last block's output");
    }
    ggml_set_output(grad_t);
    allocate(head->gf, "head backward");
    set_inputs(*head, e, ref, w);
    ggml_backend_tensor_set(head->last_block_out, xs[L].data(), 0, xs[L].size() * sizeof(float));
    compute(head->gf, "head backward");
    const float loss = scalar(head->loss);
    std::vector<float> grad(xs[L].size());
    ggml_backend_tensor_get(grad_t, grad.data(), 0, grad.size() * sizeof(float));
    ggml_backend_sched_reset(sched_);
    for (int il = L - 1; il >= 0; il--) {
        grad = block_backward(*head, il, xs[il], grad);
    }
    return loss;
}

// One block computed again from its input x, with d loss / d output given: adds its LoRA tensors' gradients into
// the accumulators and returns d loss / d x. The seed is sum(output * grad_out), whose gradient is grad_out itself.
std::vector<float> trainer::block_backward(const graph & packing, int il, const std::vector<float> & x, const std::vector<float> & grad_out) {
    const int T = packing.T;
    if (x.size() != (size_t) model_.n_embd * T || grad_out.size() != x.size()) {
        throw std::logic_error("block_backward: checkpoint or gradient of the wrong size");
    }
    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() + ggml_graph_overhead_custom(GRAPH_SIZE, true), nullptr, true };
    graph g;  // owns the context
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, GRAPH_SIZE, true);
    packed_inputs in = attention_inputs(g.ctx, T);
    ggml_tensor * x_t = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, T);
    ggml_set_input(x_t);
    if (il > 0) {
        ggml_set_param(x_t);  // its gradient goes to the block before
    }
    ggml_tensor * grad_out_t = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, T);
    ggml_set_input(grad_out_t);
    ggml_tensor * out = family_of(model_).layer(g.ctx, model_, lora_.get(), in, T, il, x_t);
    ggml_tensor * seed = ggml_sum(g.ctx, ggml_mul(g.ctx, out, grad_out_t));
    ggml_build_forward_expand(g.gf, seed);
    expand_backward(g.ctx, g.gf, seed);
    ggml_tensor * grad_x = il > 0 ? ggml_graph_get_grad(g.gf, x_t) : nullptr;
    if (il > 0 && grad_x == nullptr) {
        throw std::runtime_error("block " + std::to_string(il) + "'s output does not depend on its input");
    }
    if (grad_x) {
        ggml_set_output(grad_x);
    }
    allocate(g.gf, "block backward");
    set_attention_inputs(packing, in);
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

std::vector<float> trainer::gradient(const example & e, const loss_weights & w, const reference & ref, const std::string & tensor) {
    ggml_tensor * acc = opt_->grad_of(lora_->param(tensor));
    opt_->zero_grads();
    backward(e, w, ref, 1.0f);
    std::vector<float> grad(ggml_nelements(acc));
    ggml_backend_tensor_get(acc, grad.data(), 0, grad.size() * sizeof(float));
    opt_->zero_grads();
    return grad;
}

trainer::step_result trainer::step(const std::vector<example> & batch, const std::vector<reference> & refs, const loss_weights & w,
                                   float learning_rate, float weight_decay, float max_grad_norm) {
    if (batch.empty() || refs.size() != batch.size()) {
        throw std::invalid_argument("a step needs examples, each with its reference");
    }
    if (!std::isfinite(learning_rate) || learning_rate <= 0 || !std::isfinite(weight_decay) || weight_decay < 0 ||
        weight_decay > 1 || !std::isfinite(max_grad_norm) || max_grad_norm < 0) {
        throw std::invalid_argument("learning rate must be > 0, weight decay in [0, 1] and max grad norm >= 0");
    }
    // Each example adds the gradient of loss / batch size: the accumulators end up with the batch mean's gradient.
    opt_->zero_grads();
    step_result r;
    for (size_t i = 0; i < batch.size(); i++) {
        r.loss += backward(batch[i], w, refs[i], 1.0f / (float) batch.size());
    }
    r.grad_norm = opt_->step(sched_, learning_rate, weight_decay, max_grad_norm);
    return r;
}

}  // namespace steer::train
