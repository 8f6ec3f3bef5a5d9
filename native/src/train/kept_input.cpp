// LoRA on the last blocks only (lora_set's `layers`): the blocks below the first adapted one are the base model's
// whatever the training, so their output for a packed sequence is computed once, kept while the trainer lives, and
// given to every later graph of that sequence as its input (trainer::blocks). A job computes those blocks once per
// distinct packing (an example's reference, steps and checks share one; a DPO stand-in branch or a trimmed packing
// is another) instead of in every step; no gradient flows below either.
#include "trainer_graph.h"

#include <stdexcept>

namespace steer::train {

const std::vector<float> & trainer::kept_input(graph & g) {
    packing_key key{g.p.tokens, g.p.positions, g.p.seq};
    if (auto it = kept_inputs_.find(key); it != kept_inputs_.end()) {
        return it->second;
    }
    ggml_init_params ip = { (size_t) GRAPH_SIZE * ggml_tensor_overhead() + ggml_graph_overhead_custom(GRAPH_SIZE, false), nullptr, true };
    graph lg;  // owns the context; the packing and masks are g's
    lg.ctx = ggml_init(ip);
    lg.gf = ggml_new_graph_custom(lg.ctx, GRAPH_SIZE, false);
    packed_inputs in = attention_inputs(lg.ctx, g.T);
    in.tokens = ggml_new_tensor_1d(lg.ctx, GGML_TYPE_I32, g.T);
    ggml_set_input(in.tokens);
    ggml_tensor * out = blocks_between(lg.ctx, model_, nullptr, in, g.T, 0, lora_->first_layer(), family_of(model_).embed(lg.ctx, model_, in));
    ggml_set_output(out);
    ggml_build_forward_expand(lg.gf, out);
    allocate(lg.gf, "lower blocks");
    ggml_backend_tensor_set(in.tokens, g.p.tokens.data(), 0, g.T * sizeof(int32_t));
    set_attention_inputs(g, in);
    compute(lg.gf, "lower blocks");
    lower_passes_++;
    std::vector<float> x(ggml_nelements(out));
    ggml_backend_tensor_get(out, x.data(), 0, x.size() * sizeof(float));
    ggml_backend_sched_reset(sched_);
    const size_t bytes = x.size() * sizeof(float) + 3 * key.tokens.size() * sizeof(int32_t);
    if (kept_bytes_ + bytes > KEPT_INPUTS_BYTES) {
        g.kept_input_own = std::move(x);
        return g.kept_input_own;
    }
    kept_bytes_ += bytes;
    return kept_inputs_.emplace(std::move(key), std::move(x)).first->second;
}

// The packing a reference reads (reference_logps): keep rows, no stand-in branch, which an SFT step's equals.
std::vector<float> trainer::kept_input_of(const example & e) {
    if (lora_->first_layer() == 0) {
        return {};
    }
    auto g = start(e, loss_weights{}, false, true, 0);
    return kept_input(*g);
}

void trainer::keep_input(const example & e, std::vector<float> input) {
    if (lora_->first_layer() == 0) {
        throw std::invalid_argument("every block is adapted: there is no input below them to keep");
    }
    auto g = start(e, loss_weights{}, false, true, 0);
    if (input.size() != (size_t) model_.n_embd * g->T) {
        throw std::invalid_argument("a kept input of this example holds " + std::to_string((size_t) model_.n_embd * g->T)
                                    + " floats, not " + std::to_string(input.size()));
    }
    packing_key key{g->p.tokens, g->p.positions, g->p.seq};
    const size_t bytes = input.size() * sizeof(float) + 3 * key.tokens.size() * sizeof(int32_t);
    if (kept_inputs_.count(key) > 0 || kept_bytes_ + bytes > KEPT_INPUTS_BYTES) {
        return;  // kept already, or past the bound: then computed when a graph needs it, as without this call
    }
    kept_bytes_ += bytes;
    kept_inputs_.emplace(std::move(key), std::move(input));
}

}  // namespace steer::train
