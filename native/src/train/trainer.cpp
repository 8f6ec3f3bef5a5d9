#include "trainer_graph.h"

#include "ggml-cpu.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

namespace steer::train {

trainer::trainer(const llama_model * model, const std::vector<std::string> & targets, int rank, float alpha, int lora_layers,
                 uint32_t seed, int n_threads)
        : model_(read_model_view(model)), llama_model_(model) {
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
        threads_ = n_threads;
        backends_.push_back(cpu);
        sched_ = ggml_backend_sched_new(backends_.data(), nullptr, (int) backends_.size(), GRAPH_SIZE, false, true);
        lora_ = std::make_unique<lora_set>(model_, targets, rank, alpha, lora_layers, backends_.front());
        lora_->init(seed);
        opt_ = std::make_unique<adamw>(lora_->params(), backends_.front());
    } catch (...) {
        release();
        throw;
    }
}

void trainer::apply_threads() {
    if (thread_cell_ == nullptr) {
        return;
    }
    int n = __atomic_load_n(thread_cell_, __ATOMIC_ACQUIRE);
    if (n >= 1 && n != threads_) {
        ggml_backend_cpu_set_n_threads(backends_.back(), n);  // the CPU backend is the last (the constructor)
        threads_ = n;
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

// Which tokens are only whitespace (the first-token term weighs a correction's first word: packing.h). Made once, on
// the first graph with that term: jobs without it never read the vocabulary.
const std::vector<bool> & trainer::blank_tokens() {
    if (blank_.empty()) {
        const llama_vocab * vocab = llama_model_get_vocab(llama_model_);
        blank_.assign((size_t) llama_vocab_n_tokens(vocab), false);
        for (llama_token t = 0; t < (llama_token) blank_.size(); t++) {
            char piece[64];
            const int n = llama_token_to_piece(vocab, t, piece, sizeof piece, 0, true);
            bool only_space = n > 0;
            for (int i = 0; i < n && only_space; i++) {
                only_space = piece[i] == ' ' || piece[i] == '\n' || piece[i] == '\t' || piece[i] == '\r';
            }
            blank_[(size_t) t] = only_space;
        }
    }
    return blank_;
}

// What every graph of one example starts with: its packing (keep rows too when a term or output reads them), the
// attention masks, a ggml context and an empty graph.
std::unique_ptr<trainer::graph> trainer::start(const example & e, const loss_weights & w, bool for_training, bool keep_rows,
                                                size_t guard_pairs) {
    check_tokens(model_, e.tokens, "tokens");
    check_tokens(model_, e.rejected, "rejected");
    auto g = std::make_unique<graph>();
    // In training with a preference term, an example without a rejected span gets a one-token stand-in whose term is
    // switched off by an input (dpo_on = 0): every training graph of a job then has the same loss terms.
    g->p = pack(e, e.rejected.empty() && for_training && w.dpo > 0, w.kl > 0 || w.guard > 0 || keep_rows,
                w.first > 0 ? &blank_tokens() : nullptr);
    const packing & p = g->p;
    if (p.learn_rows.empty() && !(w.kl > 0 && !p.keep_rows.empty()) && !(w.unlikelihood > 0 && !p.avoid_rows.empty()) && !keep_rows) {
        throw std::invalid_argument("an example needs a correction to learn, approved text to keep with a KL weight, or"
                                    " tokens to avoid with an unlikelihood weight");
    }
    g->T = p.T;
    g->guard_pairs = (int64_t) guard_pairs;
    if (model_.n_ctx_orig > 0 && p.longest > model_.n_ctx_orig) {
        throw std::invalid_argument("the example is longer than the model's trained context");
    }
    make_masks(p, model_.n_swa, g->mask, g->mask_swa);

    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() * 4 + ggml_graph_overhead_custom(GRAPH_SIZE, true), nullptr, true };
    g->ctx = ggml_init(ip);
    g->gf = ggml_new_graph_custom(g->ctx, GRAPH_SIZE, for_training);
    return g;
}

// The transformer blocks through the final norm (the architecture's graph, graphs.h): from the tokens, or, with
// LoRA on the last blocks only, from the first adapted block's kept input.
ggml_tensor * trainer::blocks(graph & g, bool use_lora) {
    if (use_lora) {
        // The parameters come first, in a fixed order (A then B per target, layers in order).
        for (ggml_tensor * param : lora_->params()) {
            ggml_build_forward_expand(g.gf, param);
        }
    }
    ggml_tensor * x = first_block_input(g);
    ggml_tensor * out = blocks_between(g.ctx, model_, use_lora ? lora_.get() : nullptr, g.in, g.T, lora_->first_layer(), model_.n_layer, x);
    return final_norm(g.ctx, model_, out);
}

ggml_tensor * trainer::first_block_input(graph & g) {
    g.in = attention_inputs(g.ctx, g.T);
    const int first = lora_->first_layer();
    ggml_tensor * x;
    if (first > 0) {
        // The blocks below the first LoRA block are the base model's: their output is an input, computed once.
        g.kept_input_value = &kept_input(g);
        g.kept_input = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, model_.n_embd, g.T);
        ggml_set_input(g.kept_input);
        x = g.kept_input;
    } else {
        g.in.tokens = ggml_new_tensor_1d(g.ctx, GGML_TYPE_I32, g.T);
        ggml_set_input(g.in.tokens);
        x = family_of(model_).embed(g.ctx, model_, g.in);
    }
    return x;
}

std::unique_ptr<trainer::graph> trainer::loss_graph(const example & e, const loss_weights & w, bool use_lora, bool for_training,
                                                     float loss_scale, bool keep_logits, bool argmax, size_t guard_pairs) {
    auto g = start(e, w, for_training, keep_logits || argmax, guard_pairs);
    head(*g, blocks(*g, use_lora), w, loss_scale, keep_logits, argmax);
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

void trainer::set_attention_inputs(const graph & g, const packed_inputs & in) const {
    ggml_backend_tensor_set(in.positions, g.p.positions.data(), 0, g.T * sizeof(int32_t));
    // A graph of one block uses one of the two masks; the other was never allocated.
    if (in.mask->buffer) {
        ggml_backend_tensor_set(in.mask, g.mask.data(), 0, g.mask.size() * sizeof(float));
    }
    if (in.mask_swa && in.mask_swa->buffer) {
        ggml_backend_tensor_set(in.mask_swa, g.mask_swa.data(), 0, g.mask_swa.size() * sizeof(float));
    }
}

// The guard's inputs from the reference's pairs: where each pair's logit and its row's approved token's logit sit in
// the keep rows' logits ([keep rows, n_vocab], row-major), and its weight: 1 / (rows with any guarded pair) where the
// base holds the token at least GUARD_MARGIN below the approved one (by the reference: `soft` is the KL's target
// distributions, the top K bound the rest), 0 elsewhere (nearer: not the adapter's doing, left to the KL).
void trainer::set_guard(graph & g, const reference & ref, const float * soft) const {
    const size_t V = model_.n_vocab, n = g.p.keep_rows.size(), m = ref.guard.size() / 2;
    if ((int64_t) m != g.guard_pairs) {
        throw std::invalid_argument("the guard's pairs are not those the graph was built for");
    }
    if (n * V > (size_t) INT32_MAX) {
        throw std::invalid_argument("too many kept tokens for the guard (keep rows x vocabulary must stay below 2^31)");
    }
    std::vector<int32_t> at(m), approved_at(m);
    std::vector<float> weight(m, 0.0f);
    std::vector<bool> any(n, false);
    const float reach = std::exp(-GUARD_MARGIN);
    // The most the base may give a token: `soft` (its probability when among the row's top K; else the rest of the
    // mass spread evenly, which can understate a token just outside the top K), but no less than the row's K-th
    // probability, which bounds every token outside the top K and is below every token in it. The bound keeps the
    // term zero at the base.
    const size_t K = REFERENCE_TOP_K;
    std::vector<float> least(n, 0.0f);
    for (size_t r = 0; V > K && r < n; r++) {
        least[r] = *std::min_element(ref.keep_probs.begin() + r * K, ref.keep_probs.begin() + (r + 1) * K);
    }
    for (size_t i = 0; i < m; i++) {
        const int32_t r = ref.guard[2 * i], t = ref.guard[2 * i + 1];
        if (r < 0 || (size_t) r >= n || t < 0 || t >= model_.n_vocab) {
            throw std::invalid_argument("a guard pair names a keep row the example lacks or a token outside the vocabulary");
        }
        const int32_t approved = g.p.keep_next[r];
        at[i] = (int32_t) (r * V + t);
        approved_at[i] = (int32_t) (r * V + approved);
        if (t != approved && std::max(soft[(size_t) r * V + t], least[r]) <= reach * soft[(size_t) r * V + approved]) {
            weight[i] = 1.0f;
            any[r] = true;
        }
    }
    const float share = 1.0f / (float) std::max<size_t>(1, std::count(any.begin(), any.end(), true));
    for (float & x : weight) {
        x *= share;
    }
    ggml_backend_tensor_set(g.guard_at, at.data(), 0, m * sizeof(int32_t));
    ggml_backend_tensor_set(g.guard_approved_at, approved_at.data(), 0, m * sizeof(int32_t));
    ggml_backend_tensor_set(g.guard_weight, weight.data(), 0, m * sizeof(float));
}

// An input the scheduler left without a buffer is not in this graph (nothing reads it), e.g. an empty row list:
// nothing to set, and ggml_backend_tensor_set would abort the process on it.
static bool allocated(const ggml_tensor * t) {
    return t != nullptr && (t->view_src ? t->view_src->buffer : t->buffer) != nullptr;
}

void trainer::set_inputs(graph & g, const reference & ref, const loss_weights & w) {
    const packing & p = g.p;
    if (ref.guard.size() % 2 != 0) {
        throw std::invalid_argument("the guard holds (keep row, token) pairs");
    }
    if (allocated(g.in.tokens)) {
        ggml_backend_tensor_set(g.in.tokens, p.tokens.data(), 0, g.T * sizeof(int32_t));
    }
    if (allocated(g.in.positions)) {
        set_attention_inputs(g, g.in);
    }
    if (allocated(g.kept_input)) {
        ggml_backend_tensor_set(g.kept_input, g.kept_input_value->data(), 0, g.kept_input_value->size() * sizeof(float));
    }
    auto set_rows = [&](ggml_tensor * rows_t, const std::vector<int32_t> & rows) {
        if (allocated(rows_t)) {
            ggml_backend_tensor_set(rows_t, rows.data(), 0, rows.size() * sizeof(int32_t));
        }
    };
    auto set_onehot = [&](ggml_tensor * labels_t, const std::vector<int32_t> & next) {
        if (!allocated(labels_t)) {
            return;
        }
        // Zeros, then a 1 per row, in the tensor itself: a dense copy on the host was another [vocabulary, rows] of
        // floats per example and step (17 MiB for Gemma 3's 16 learn rows), allocated, filled and copied each time.
        ggml_backend_tensor_memset(labels_t, 0, 0, ggml_nbytes(labels_t));
        const float one = 1.0f;
        for (size_t i = 0; i < next.size(); i++) {
            ggml_backend_tensor_set(labels_t, &one, (i * (size_t) model_.n_vocab + (size_t) next[i]) * sizeof(float), sizeof one);
        }
    };
    set_rows(g.rows_l, p.learn_rows);
    set_onehot(g.labels_l, p.learn_next);
    set_rows(g.rows_f, p.first_learn);
    set_onehot(g.labels_f, p.first_next);
    set_rows(g.rows_a, p.avoid_rows);
    set_onehot(g.labels_a, p.avoid_next);
    if (allocated(g.one_a)) {
        // 1 plus a little, so that log(1 - p) stays finite where p rounds to 1
        const std::vector<float> one(p.avoid_rows.size(), 1.0f + 1e-6f);
        ggml_backend_tensor_set(g.one_a, one.data(), 0, one.size() * sizeof(float));
    }
    set_rows(g.rows_r, p.rej_rows);
    set_onehot(g.labels_r, p.rej_next);
    set_rows(g.rows_k, p.keep_rows);
    if (g.labels_k != nullptr || g.guard_at != nullptr) {
        const size_t K = REFERENCE_TOP_K, n = p.keep_rows.size();
        if (ref.keep_ids.size() != n * K || ref.keep_probs.size() != n * K) {
            throw std::invalid_argument("the reference holds " + std::to_string(ref.keep_ids.size() / K) + " keep rows; the example has "
                                        + std::to_string(n) + " (compute the reference of this example)");
        }
        const size_t V = model_.n_vocab, top = std::min(K, V);
        // The distributions are written straight into the labels tensor where its memory is the host's (the CPU
        // backend): a staged copy was [vocabulary, keep rows] of floats more per example and step (~29 MiB for 150
        // kept tokens of SmolLM2's vocabulary, 150 MiB of Gemma 3's) at the moment the graph's memory is allocated.
        const ggml_tensor * lk = g.labels_k;
        const bool in_place = allocated(lk) && ggml_backend_buffer_is_host(lk->view_src ? lk->view_src->buffer : lk->buffer);
        std::vector<float> staged;
        if (!in_place) {
            staged.resize(V * n);
        }
        float * soft = in_place ? (float *) g.labels_k->data : staged.data();
        for (size_t r = 0; r < n; r++) {
            double mass = 0;
            for (size_t k = 0; k < top; k++) {
                const float q = ref.keep_probs[r * K + k];
                if (ref.keep_ids[r * K + k] < 0 || ref.keep_ids[r * K + k] >= model_.n_vocab || !std::isfinite(q) || q < 0) {
                    throw std::invalid_argument("the reference holds a token outside the vocabulary or a bad probability");
                }
                mass += q;
            }
            // The mass outside the top tokens, spread evenly: the labels sum to 1 (what the cross-entropy's backward assumes).
            const float rest = top < V ? (float) std::max(0.0, 1.0 - mass) / (float) (V - top) : 0.0f;
            std::fill(soft + r * V, soft + (r + 1) * V, rest);
            for (size_t k = 0; k < top; k++) {
                soft[r * V + ref.keep_ids[r * K + k]] = ref.keep_probs[r * K + k];
            }
        }
        if (g.labels_k != nullptr) {
            if (!in_place) {
                ggml_backend_tensor_set(g.labels_k, staged.data(), 0, staged.size() * sizeof(float));
            }
            ggml_backend_tensor_set(g.keep_entropy, &ref.keep_entropy, 0, sizeof(float));
        }
        if (g.guard_at != nullptr) {
            set_guard(g, ref, soft);
        }
    }
    if (g.ref_delta) {
        const float d = p.placeholder_rejected ? 0.0f : w.beta * (ref.logp_chosen - ref.logp_rejected);
        ggml_backend_tensor_set(g.ref_delta, &d, 0, sizeof d);
        const float on = p.placeholder_rejected ? 0.0f : 1.0f;
        ggml_backend_tensor_set(g.dpo_on, &on, 0, sizeof on);
    }
}

std::vector<float> trainer::logits(const std::vector<int32_t> & tokens, bool use_lora) {
    check_tokens(model_, tokens, "tokens");
    if (tokens.empty()) {
        throw std::invalid_argument("no tokens");
    }
    graph g;
    g.T = (int) tokens.size();
    g.p.T = g.T;
    g.p.tokens = tokens;
    for (int i = 0; i < g.T; i++) {
        g.p.positions.push_back(i);
        g.p.seq.push_back(0);
    }
    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() + ggml_graph_overhead_custom(GRAPH_SIZE, false), nullptr, true };
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, GRAPH_SIZE, false);
    make_masks(g.p, model_.n_swa, g.mask, g.mask_swa);
    g.in = attention_inputs(g.ctx, g.T);
    g.in.tokens = ggml_new_tensor_1d(g.ctx, GGML_TYPE_I32, g.T);
    ggml_set_input(g.in.tokens);
    g.logits_all = lm_logits(g.ctx, model_, hidden_states(g.ctx, model_, use_lora ? lora_.get() : nullptr, g.in, g.T));
    ggml_set_output(g.logits_all);
    ggml_build_forward_expand(g.gf, g.logits_all);
    allocate(g.gf, "forward");
    set_inputs(g, reference{}, loss_weights{});
    compute(g.gf, "forward");
    std::vector<float> out(ggml_nelements(g.logits_all));
    ggml_backend_tensor_get(g.logits_all, out.data(), 0, out.size() * sizeof(float));
    return out;
}

evaluation trainer::evaluate(const example & e, const loss_weights & w, const reference & ref, bool use_lora) {
    auto g = loss_graph(e, w, use_lora, false, 1.0f, false, false, ref.guard.size() / 2);
    allocate(g->gf, "evaluation");
    set_inputs(*g, ref, w);
    compute(g->gf, "evaluation");
    evaluation ev;
    ev.loss = g->loss ? scalar(g->loss) : 0.0f;
    ev.logp_chosen = g->logp_c ? scalar(g->logp_c) : 0.0f;
    ev.logp_rejected = g->logp_r ? scalar(g->logp_r) : 0.0f;
    ev.kl = g->kl ? scalar(g->kl) : 0.0f;
    return ev;
}

predictions trainer::predict(const example & e, bool use_lora) {
    auto g = loss_graph(e, loss_weights{}, use_lora, false, 1.0f, false, true);
    if (g->p.learn_rows.empty() && g->p.keep_rows.empty()) {
        throw std::invalid_argument("an example to predict needs learn or keep rows");
    }
    allocate(g->gf, "prediction");
    set_inputs(*g, reference{}, loss_weights{});
    compute(g->gf, "prediction");
    predictions out;
    out.learn.resize(g->p.learn_rows.size());
    out.keep.resize(g->p.keep_rows.size());
    if (g->learn_argmax) {
        ggml_backend_tensor_get(g->learn_argmax, out.learn.data(), 0, out.learn.size() * sizeof(int32_t));
    }
    if (g->keep_argmax) {
        ggml_backend_tensor_get(g->keep_argmax, out.keep.data(), 0, out.keep.size() * sizeof(int32_t));
    }
    ggml_backend_sched_reset(sched_);
    return out;
}

std::vector<float> trainer::snapshot() const {
    std::vector<float> v;
    for (ggml_tensor * t : lora_->params()) {
        const size_t at = v.size();
        v.resize(at + ggml_nelements(t));
        ggml_backend_tensor_get(t, v.data() + at, 0, ggml_nbytes(t));
    }
    return v;
}

void trainer::restore(const std::vector<float> & values) {
    size_t n = 0;
    for (ggml_tensor * t : lora_->params()) {
        n += ggml_nelements(t);
    }
    if (values.size() != n) {
        throw std::invalid_argument("a snapshot holds " + std::to_string(n) + " values, not " + std::to_string(values.size()));
    }
    size_t at = 0;
    for (ggml_tensor * t : lora_->params()) {
        ggml_backend_tensor_set(t, values.data() + at, 0, ggml_nbytes(t));
        at += ggml_nelements(t);
    }
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
    recompute_cheap_activations(ctx, gf, n_nodes, recompute_, attention_blocks_);
    if (kept_in_16_bits_) {
        keep_activations_in_16_bits(ctx, gf, n_nodes);
    }
}

void trainer::compute(ggml_cgraph * gf, const char * what) {
    apply_threads();
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
    if (checkpoint_segments_ == EVERY_BLOCK) {
        return backward_checkpointed(e, w, ref, loss_scale);
    }
    if (checkpoint_segments_ >= 2) {
        return backward_segments(e, w, ref, loss_scale, checkpoint_segments_);
    }
    return backward_plain(e, w, ref, loss_scale);
}

size_t trainer::compute_buffer_bytes() const {
    size_t bytes = 0;
    for (ggml_backend_t b : backends_) {
        bytes += ggml_backend_sched_get_buffer_size(sched_, b);
    }
    return bytes;
}

// Every block's activations kept until the backward pass reads them: one graph, forward and backward.
float trainer::backward_plain(const example & e, const loss_weights & w, const reference & ref, float loss_scale) {
    auto g = loss_graph(e, w, true, true, loss_scale, false, false, ref.guard.size() / 2);
    if (g->loss == nullptr) {
        throw std::invalid_argument("the example has no loss term to train on");
    }
    expand_backward(g->ctx, g->gf, g->loss);
    allocate(g->gf, "backward");
    set_inputs(*g, ref, w);
    compute(g->gf, "backward");
    const float loss = scalar(g->loss);
    ggml_backend_sched_reset(sched_);
    return loss;
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
                                   float learning_rate, float weight_decay, float max_grad_norm, float adam_eps) {
    if (batch.empty() || refs.size() != batch.size()) {
        throw std::invalid_argument("a step needs examples, each with its reference");
    }
    if (!std::isfinite(learning_rate) || learning_rate <= 0 || !std::isfinite(weight_decay) || weight_decay < 0 ||
        weight_decay > 1 || !std::isfinite(max_grad_norm) || max_grad_norm < 0 || !std::isfinite(adam_eps) || adam_eps <= 0) {
        throw std::invalid_argument("learning rate must be > 0, weight decay in [0, 1], max grad norm >= 0 and Adam's epsilon > 0");
    }
    // Each example adds the gradient of loss / batch size: the accumulators end up with the batch mean's gradient.
    opt_->zero_grads();
    step_result r;
    for (size_t i = 0; i < batch.size(); i++) {
        r.loss += backward(batch[i], w, refs[i], 1.0f / (float) batch.size());
    }
    r.grad_norm = opt_->step(sched_, learning_rate, weight_decay, max_grad_norm, adam_eps);
    return r;
}

}  // namespace steer::train
