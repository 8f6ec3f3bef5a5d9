// Trains a LoRA adapter on steers. One example is an answer as the person left it (packing.h): prompt, approved
// text ("keep"), corrections ("learn"), and optionally the model's rejected continuation at the last fork. The loss:
//
//   L = alpha_nll * mean CE(learn tokens)                                 imitate the corrections
//     + phi       * mean CE(each correction's first word)                choose it where the model went its own way
//     + kappa     * mean KL(p_ref || p) over the keep rows                 stay the base model where the person approved
//     + lambda    * -log sigmoid(beta * [(log p(chosen) - log p_ref(chosen)) - (log p(rejected) - log p_ref(rejected))])
//     + gamma     * sum over the guarded (keep row, token) pairs of max(0, log p(token) - log p(approved) + m) / guarded rows
//
// The phi term weighs the token where greedy decoding chooses between the correction and what the model said more than
// the rest of the correction, which follows once the first token is said: alpha's mean over tokens gives a
// five-token correction's decision a fifth of its weight.
//
// where p_ref is the same weights with the adapter off, computed once per example (reference_logps), "chosen" is
// every learn token of the example and "rejected" the rejected branch. The KL term is computed as a soft-label
// cross-entropy toward p_ref (its top REFERENCE_TOP_K tokens exactly, the rest spread evenly) minus that target's
// entropy: the same gradient as the KL. One graph holds the answer once and the rejected branch
// beside it; the mask keeps them apart. AdamW with clipping (adamw.h).
//
// The gamma term is the guard. At a keep row the person approved a token; the job's correction tokens (reference::guard)
// that the base holds at least m = GUARD_MARGIN nats below it there must stay m below it under the adapter. The KL
// barely notices an adapter that moves a few percent of a flat row's mass onto one new token, yet on a flat row
// that is enough to make the correction's word the greedy choice where the person approved something else: the
// learned sentence said again, the habit leaking into other answers. The guard charges exactly that, and nothing
// while the correction's tokens stay out of the approved token's reach (zero, and no gradient, at the base).
#pragma once

#include "adamw.h"
#include "graphs.h"
#include "packing.h"

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace steer::train {

// How many of the base model's most likely tokens a keep row's reference holds, with their exact probabilities; the
// rest of the mass (small for an instruction model) is spread evenly over the other tokens. So the target equals
// the base on every token that can matter and the term's gradient there is exactly 0 at the base (renormalizing
// the top tokens instead pushed every kept row to sharpen, which changed answers nobody taught). 256 ids and
// probabilities per kept token keep a job's references in MBs instead of a vocabulary-wide row per token.
inline constexpr int REFERENCE_TOP_K = 256;

// How far below the approved token, in log-probability, a guarded token must stay (the guard, above): e^1, so a
// correction's word cannot come within a factor 2.7 of the token greedy decoding chose at approved text.
inline constexpr float GUARD_MARGIN = 1.0f;

// What the backward pass computes again instead of keeping from the forward pass (recompute.cpp): nothing; the
// elementwise activations (the gated FFN product, RMS-normed matmul inputs; free in time); also the attention's
// probabilities and merged heads (two small matmuls again per block), in every block or the lowest N.
enum class recompute { none = 0, elementwise = 1, attention = 2 };
inline constexpr int ALL_BLOCKS = -1;

struct loss_weights {
    float nll = 1.0f;   // alpha: weight of the masked cross-entropy (per learn token, mean)
    float dpo = 0.0f;   // lambda: weight of the span-DPO term; 0 turns it off
    float beta = 0.1f;
    float kl = 0.0f;    // kappa: weight of the keep rows' KL to the base (per keep token, mean); 0 turns it off
    float unlikelihood = 0.0f;  // weight of -log(1 - p(token)) on the avoid rows (mean); 0 turns it off
    float guard = 0.0f;         // gamma: weight of the guard on the keep rows' guarded tokens; 0 turns it off
    float first = 0.0f;         // weight of the cross-entropy on each correction's first word again (its first token
                                // not only whitespace; mean over corrections, beside nll's mean over all its tokens);
                                // 0 turns it off
};

struct reference {
    float logp_chosen = 0, logp_rejected = 0;
    // Per keep row, in order: the base model's REFERENCE_TOP_K most likely next tokens and their probabilities
    // ([keep rows * K] each; the rest of each row's mass goes evenly to the other tokens), and the mean entropy
    // of those target distributions.
    std::vector<int32_t> keep_ids;
    std::vector<float> keep_probs;
    float keep_entropy = 0;
    // The guard's pairs, flattened: (keep row index, token), the token held below that row's approved token.
    std::vector<int32_t> guard;
};

// What greedy decoding would write at each learn row and each keep row of one example, given the text before it
// (the argmax of the next-token distribution), in row order. Compared with the example's own next tokens, this is
// a teacher-forced check of generation: a greedy continuation from a fork begins with the correction exactly when
// each correction token is the argmax after the ones before it; a base answer stays unchanged exactly when each
// of its tokens stays the argmax. One forward pass instead of a generation per check.
struct predictions {
    std::vector<int32_t> learn, keep;
};

struct evaluation {
    float loss = 0, logp_chosen = 0, logp_rejected = 0;
    float kl = 0;  // mean KL(base || adapter) over the keep rows (0 without keep rows or without a reference)
};

class trainer {
  public:
    // lora_layers: how many blocks, from the last down, carry the LoRA pairs (0: all; more than the model has: all).
    trainer(const llama_model * model, const std::vector<std::string> & targets, int rank, float alpha, int lora_layers, uint32_t seed,
            int n_threads);
    ~trainer();

    const model_view & model() const { return model_; }
    lora_set & lora() { return *lora_; }

    // Logits of every position of one sequence, [T * n_vocab], with or without the adapter.
    std::vector<float> logits(const std::vector<int32_t> & tokens, bool use_lora);

    // Summed log-probabilities of chosen and rejected under the base model (adapter off), and its distributions on
    // the keep rows.
    reference reference_logps(const example & e);

    // The first adapted block's input for the packing of e that its reference and an SFT step read (the base
    // model's blocks below it): computed once and kept (kept_input.cpp), and empty when every block is adapted. A
    // server keeps it with the reference (Java's References) and gives it to the next job's trainer with
    // keep_input, which then computes none of those blocks for e. Refused: an input of another size.
    std::vector<float> kept_input_of(const example & e);
    void keep_input(const example & e, std::vector<float> input);
    // How many times this trainer has computed the blocks below the first adapted one (for tests).
    int lower_passes() const { return lower_passes_; }
    // Drops every kept input (a trainer that only computes what a server keeps, between two examples: no graph lives
    // between two calls, so none points into them).
    void forget_kept_inputs() {
        kept_inputs_.clear();
        kept_bytes_ = 0;
    }

    // The loss and log-probabilities of one example, forward only.
    evaluation evaluate(const example & e, const loss_weights & w, const reference & ref, bool use_lora);

    // The argmax on the learn and keep rows, with or without the adapter.
    predictions predict(const example & e, bool use_lora);

    // Every LoRA parameter, in params() order, and back: a job keeps the best checkpoint it has seen this way.
    std::vector<float> snapshot() const;
    void restore(const std::vector<float> & values);

    // d loss / d (one LoRA tensor), by backpropagation, for gradient checks.
    std::vector<float> gradient(const example & e, const loss_weights & w, const reference & ref, const std::string & tensor);

    struct step_result {
        float loss = 0;       // mean loss of the batch, before the step
        float grad_norm = 0;  // global norm of the batch's gradient, before clipping
    };

    // One AdamW step on the mean loss of a batch (gradients accumulated over its examples), the gradient first
    // clipped to max_grad_norm (<= 0: no clipping), with Adam's epsilon adam_eps (adamw::step says what it does).
    step_result step(const std::vector<example> & batch, const std::vector<reference> & refs, const loss_weights & w,
                     float learning_rate, float weight_decay, float max_grad_norm, float adam_eps);

    // Activation checkpointing for the backward passes (off by default): keep only each block's input and compute
    // the blocks again during the backward pass. Much less memory, one more forward pass; the same gradients.
    // With segments >= 2 (set_checkpoint_segments): keep only the input of each of that many runs of blocks and
    // compute all runs but the last again, one run at a time: between the two in memory and time.
    void set_checkpointing(bool on) { checkpoint_segments_ = on ? EVERY_BLOCK : 0; }
    void set_checkpoint_segments(int segments) { checkpoint_segments_ = segments >= 2 ? segments : 0; }
    static constexpr int EVERY_BLOCK = -1;
    // Which activations the backward pass computes again where it reads them instead of keeping them from the
    // forward pass (recompute.cpp): the same gradients, bit for bit, in less memory. attention_blocks: with
    // recompute::attention, in how many blocks of a graph, the lowest first (ALL_BLOCKS: every block).
    void set_recompute(recompute level, int attention_blocks = ALL_BLOCKS) {
        recompute_ = level;
        attention_blocks_ = attention_blocks;
    }
    // Whether the largest activations the backward pass reads (the attention probabilities, the FFN's gate and up)
    // are kept between the passes in 16 bits (kept16.cpp): less memory, gradients of the rounded activations.
    void set_kept_in_16_bits(bool on) { kept_in_16_bits_ = on; }
    // The bytes of the graph buffers (the largest graph allocated so far: ggml's scheduler keeps its buffer).
    size_t compute_buffer_bytes() const;

    // Where the CPU thread count lives: *cell is read before each graph (a value below 1 is ignored). Another thread
    // may write it at any time (the server lowers it as soon as a request arrives, mid-step); the caller keeps the
    // cell alive while the trainer lives.
    void set_thread_cell(const int32_t * cell) { thread_cell_ = cell; }

  private:
    struct graph;
    // The graphs of one example, each made of the parts below. loss_graph: the blocks and the loss head, the graph
    // of evaluate, predict, reference_logps and the plain backward; keep_logits also outputs the keep rows' logits
    // (a reference is computed from them), argmax the argmax of the learn and keep rows (predict).
    // guard_pairs: how many (keep row, token) pairs the reference guards (the guard term's size).
    std::unique_ptr<graph> loss_graph(const example & e, const loss_weights & w, bool use_lora, bool for_training, float loss_scale,
                                      bool keep_logits = false, bool argmax = false, size_t guard_pairs = 0);
    // The parts: packing, masks and an empty graph; the blocks through the final norm, from the tokens or the kept
    // input; the loss head on the final hidden states (loss_head.cpp). Activation checkpointing builds its graphs
    // from the same parts (checkpointing.cpp).
    std::unique_ptr<graph> start(const example & e, const loss_weights & w, bool for_training, bool keep_rows, size_t guard_pairs = 0);
    ggml_tensor * blocks(graph & g, bool use_lora);
    // The first LoRA block's input: the kept input, or the embeddings when every block has LoRA (sets g.in).
    ggml_tensor * first_block_input(graph & g);
    // The input of the first block with LoRA pairs for g's packing (the blocks below it are the base model's):
    // computed once per distinct packing and kept while the trainer lives (kept_inputs_; kept_input.cpp). Past
    // KEPT_INPUTS_BYTES (host memory, on top of the job's) nothing more is kept: it is computed again each time, in g.
    const std::vector<float> & kept_input(graph & g);
    void head(graph & g, ggml_tensor * hidden, const loss_weights & w, float loss_scale, bool keep_logits, bool argmax);
    packed_inputs attention_inputs(ggml_context * ctx, int T) const;
    void set_attention_inputs(const graph & packed, const packed_inputs & in) const;
    // The graph's inputs from its packing (tokens, masks, rows, labels) and the reference (KL targets, DPO offset).
    void set_inputs(graph & g, const reference & ref, const loss_weights & w);
    void set_guard(graph & g, const reference & ref, const float * soft) const;
    void release();  // frees what the constructor made (also when it throws)

    void expand_backward(ggml_context * ctx, ggml_cgraph * gf, ggml_tensor * loss);
    void allocate(ggml_cgraph * gf, const char * what);
    void compute(ggml_cgraph * gf, const char * what);

    // Forward and backward of one example; adds d (loss_scale * loss) / d p into the optimizer's accumulators.
    float backward(const example & e, const loss_weights & w, const reference & ref, float loss_scale);
    float backward_plain(const example & e, const loss_weights & w, const reference & ref, float loss_scale);
    float backward_checkpointed(const example & e, const loss_weights & w, const reference & ref, float loss_scale);
    float backward_segments(const example & e, const loss_weights & w, const reference & ref, float loss_scale, int segments);
    float backward_runs(const example & e, const loss_weights & w, const reference & ref, float loss_scale, const std::vector<int> & bounds);
    std::vector<float> blocks_backward(const graph & packed, int from, int to, const std::vector<float> & x, const std::vector<float> & grad_out);

    model_view model_;
    const llama_model * llama_model_;
    std::vector<bool> blank_;  // per token id: only whitespace (packing.h's first words); see blank_tokens
    const std::vector<bool> & blank_tokens();
    // The device that holds the weights (the trainer reads them where serving keeps them), then the CPU.
    std::vector<ggml_backend_t> backends_;
    ggml_backend_sched_t sched_ = nullptr;
    std::unique_ptr<lora_set> lora_;
    std::unique_ptr<adamw> opt_;
    int checkpoint_segments_ = 0;  // 0: off; EVERY_BLOCK; N >= 2: N runs of blocks
    recompute recompute_ = recompute::elementwise;
    int attention_blocks_ = ALL_BLOCKS;
    bool kept_in_16_bits_ = false;
    struct packing_key {
        std::vector<int32_t> tokens, positions, seq;  // what the blocks' output depends on (the masks follow from them)
        bool operator<(const packing_key & o) const {
            return std::tie(tokens, positions, seq) < std::tie(o.tokens, o.positions, o.seq);
        }
    };
    static constexpr size_t KEPT_INPUTS_BYTES = (size_t) 512 << 20;
    std::map<packing_key, std::vector<float>> kept_inputs_;  // never erased: a graph points into it
    size_t kept_bytes_ = 0;
    int lower_passes_ = 0;
    const int32_t * thread_cell_ = nullptr;
    int threads_ = 1;  // what the CPU backend was last given
    void apply_threads();
};

}  // namespace steer::train
