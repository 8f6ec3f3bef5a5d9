// dev.steer.llama.LayerProbe: the mean of the hidden states that enter one transformer block, over a short token
// sequence, read from llama.cpp's own forward pass and stopped there: the blocks above it and the LM head are never
// computed. Routing reads it (dev.steer.adapters.Scope): an adapter on the last blocks sees exactly this input.
//
// How: the context's eval callback (ggml_backend_sched's) asks for one tensor by the name llama.cpp's graphs give a
// block's output ("l_out-N", every architecture), sums its columns when it has been computed, and returns false,
// which ends the computation of that split of the graph. A CPU-only graph is one split. Where there are more (layers
// on a GPU), the scheduler goes on to the next split: the callback then asks to see each split's first node and stops
// it there, so nothing above the block is computed whatever the split. Weights stay where they are (no op offload).
//
// The positions a call shares with the one before (the same tokens from position 0: a chat template's system prompt
// and turn header) are not computed again: their KV cells and their states are kept (attention is causal, so a
// position's state depends on the tokens up to it only), as llama-server reuses a prompt's cached prefix.
#include "model.h"

#include <string>
#include <vector>

using namespace steer;

namespace {

struct probe_handle {
    llama_context * ctx = nullptr;
    llama_batch batch{};
    int32_t n_max = 0;      // tokens a call may give
    int32_t n_embd = 0;
    std::string wanted;     // "l_out-<layer - 1>"
    std::vector<int32_t> tokens;  // of the last call whose states are kept; its KV cells hold them
    std::vector<float> states;    // [n_max][n_embd]: the block's input at each of those positions
    int32_t first = 0;            // the current call computes positions first .. n_tokens - 1
    int32_t n_tokens = 0;         // of the current call
    bool reached = false;         // the wanted tensor was computed: stop every split from here on
    bool seen = false;            // ... and it had the expected shape, so `states` holds it
};

bool read_block_input(ggml_tensor * t, bool ask, void * user) {
    auto * p = static_cast<probe_handle *>(user);
    if (ask) {
        return p->reached || p->wanted == t->name;
    }
    if (p->reached) {
        return false;
    }
    p->reached = true;
    if (t->type == GGML_TYPE_F32 && t->ne[0] == p->n_embd && t->ne[1] == p->n_tokens - p->first && ggml_is_contiguous(t)) {
        ggml_backend_tensor_get(t, p->states.data() + (size_t) p->first * p->n_embd, 0, ggml_nbytes(t));
        p->seen = true;
    }
    return false;  // nothing above this block is needed
}

probe_handle * probe_of(jlong h) { return from_handle<probe_handle>(h, "layer probe"); }

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LayerProbe_nativeCreate(JNIEnv * env, jclass, jlong model_h, jint layer, jint n_max, jint n_threads) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        const int32_t n_layer = llama_model_n_layer(model);
        if (layer < 1 || layer >= n_layer) {
            throw bad_argument("a probe reads the input of blocks 1 .. " + std::to_string(n_layer - 1) + ", not " + std::to_string(layer));
        }
        if (n_max < 1 || n_threads < 1) {
            throw bad_argument("token count and threads must be positive");
        }
        auto * p = new probe_handle();
        p->n_max  = n_max;
        p->n_embd = llama_model_n_embd(model);
        p->wanted = "l_out-" + std::to_string(layer - 1);
        p->states.assign((size_t) n_max * p->n_embd, 0.0f);
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx             = (uint32_t) n_max;
        cp.n_batch           = (uint32_t) n_max;
        cp.n_ubatch          = (uint32_t) n_max;  // one graph: the callback sees every token at once
        cp.n_seq_max         = 1;
        cp.n_threads         = n_threads;
        cp.n_threads_batch   = n_threads;
        cp.no_perf           = true;
        cp.op_offload        = false;  // a weight in host memory is multiplied there, not copied to a GPU per call
        cp.cb_eval           = read_block_input;
        cp.cb_eval_user_data = p;
        p->ctx = llama_init_from_model(const_cast<llama_model *>(model), cp);
        if (p->ctx == nullptr) {
            delete p;
            throw llama_failure("failed to create the layer probe's context");
        }
        try {
            p->batch = llama_batch_init(n_max, 0, 1);
        } catch (...) {
            llama_free(p->ctx);
            delete p;
            throw;
        }
        return to_handle(p);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LayerProbe_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] {
        probe_handle * p = probe_of(h);
        llama_batch_free(p->batch);
        llama_free(p->ctx);
        delete p;
    });
}

// The mean over the tokens of the hidden state entering the probe's block; the tokens alone, from position 0 (what
// they share with the last call's, from position 0, is not computed again).
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LayerProbe_nativeMeanInput(JNIEnv * env, jclass, jlong h, jintArray token_arr) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        probe_handle * p = probe_of(h);
        const std::vector<int32_t> tokens = to_ints(env, token_arr);
        if (tokens.empty() || (int32_t) tokens.size() > p->n_max) {
            throw bad_argument("a probe reads 1 .. " + std::to_string(p->n_max) + " tokens, not " + std::to_string(tokens.size()));
        }
        const llama_vocab * vocab = llama_model_get_vocab(llama_get_model(p->ctx));
        for (int32_t t : tokens) {
            check_token(vocab, t);
        }
        // Positions shared with the last call are kept (at least the last one is computed: llama_decode wants a token).
        const int32_t n = (int32_t) tokens.size();
        int32_t keep = 0;
        while (keep < n - 1 && keep < (int32_t) p->tokens.size() && p->tokens[(size_t) keep] == tokens[(size_t) keep]) {
            keep++;
        }
        llama_memory_t mem = llama_get_memory(p->ctx);
        if (keep == 0 || !llama_memory_seq_rm(mem, 0, keep, -1)) {
            keep = 0;
            llama_memory_clear(mem, false);
        }
        p->tokens.clear();  // until this call has succeeded, nothing is kept
        p->batch.n_tokens = n - keep;
        for (int32_t i = keep; i < n; i++) {
            const int32_t b = i - keep;
            p->batch.token[b]     = tokens[(size_t) i];
            p->batch.pos[b]       = i;
            p->batch.n_seq_id[b]  = 1;
            p->batch.seq_id[b][0] = 0;
            p->batch.logits[b]    = i == n - 1;  // llama_decode wants an output; none is computed
        }
        p->first = keep;
        p->n_tokens = n;
        p->reached = false;
        p->seen = false;
        const int32_t rc = llama_decode(p->ctx, p->batch);
        if (rc != 0) {
            llama_memory_clear(mem, false);
            throw llama_failure("the layer probe's decode failed (" + std::to_string(rc) + ")");
        }
        if (!p->seen) {
            llama_memory_clear(mem, false);
            throw llama_failure("the model's graph has no F32 tensor " + p->wanted + " to read");
        }
        p->tokens = tokens;
        std::vector<double> sum((size_t) p->n_embd, 0.0);
        for (int32_t j = 0; j < n; j++) {
            const float * row = p->states.data() + (size_t) j * p->n_embd;
            for (int32_t i = 0; i < p->n_embd; i++) {
                sum[(size_t) i] += row[i];
            }
        }
        std::vector<float> mean((size_t) p->n_embd);
        for (size_t i = 0; i < mean.size(); i++) {
            mean[i] = (float) (sum[i] / n);
        }
        return to_jfloats(env, mean.data(), mean.size());
    });
}

}  // extern "C"
