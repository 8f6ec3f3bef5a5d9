// dev.steer.llama.LlamaContext: a llama_context with several parallel sequences: batched decode, logits,
// log-probs, KV-cache sequence operations, LoRA adapter selection.
#include "context.h"

#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>

using namespace steer;

static void check_seq(const context_handle * c, int32_t seq, bool allow_all) {
    if ((allow_all && seq == -1) || (seq >= 0 && seq < c->n_seq_max)) {
        return;
    }
    throw bad_argument("sequence id " + std::to_string(seq) + " is out of range [0, " + std::to_string(c->n_seq_max) + ")");
}

// log(sum(exp(logits))): subtracting it from a logit gives that token's log-probability.
static float log_normalizer(const float * logits, int32_t n_vocab) {
    const float max = *std::max_element(logits, logits + n_vocab);
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) {
        sum += std::exp((double) logits[i] - max);
    }
    return max + (float) std::log(sum);
}

static const float * logits_at(context_handle * c, int32_t idx) {
    const float * logits = llama_get_logits_ith(c->ctx, idx);
    if (logits == nullptr) {
        throw bad_argument("no logits at batch index " + std::to_string(idx) + " (was it marked for output in the last decode?)");
    }
    return logits;
}

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LlamaContext_nativeCreate(
        JNIEnv * env, jclass, jlong model_h, jint n_ctx, jint n_batch, jint n_ubatch, jint n_seq_max,
        jint n_threads, jint n_threads_batch, jint flash_attn, jboolean f32_kv, jboolean kv_unified) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        if (n_ctx < 1 || n_batch < 1 || n_ubatch < 1 || n_threads < 1 || n_threads_batch < 1) {
            throw bad_argument("context size, batch sizes and thread counts must be positive");
        }
        if (n_seq_max < 1 || (size_t) n_seq_max > llama_max_parallel_sequences()) {
            throw bad_argument("parallel sequences must be in [1, " + std::to_string(llama_max_parallel_sequences()) + "]");
        }
        if (n_ctx < n_seq_max) {
            throw bad_argument("context size " + std::to_string(n_ctx) + " is smaller than the number of sequences");
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx           = (uint32_t) n_ctx;
        cp.n_batch         = (uint32_t) n_batch;
        cp.n_ubatch        = (uint32_t) std::min(n_ubatch, n_batch);
        cp.n_seq_max       = (uint32_t) n_seq_max;
        cp.n_threads       = n_threads;
        cp.n_threads_batch = n_threads_batch;
        cp.flash_attn_type = flash_attn < 0 ? LLAMA_FLASH_ATTN_TYPE_AUTO
                           : flash_attn == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_ENABLED;
        cp.type_k          = f32_kv ? GGML_TYPE_F32 : GGML_TYPE_F16;
        cp.type_v          = f32_kv ? GGML_TYPE_F32 : GGML_TYPE_F16;
        cp.kv_unified      = kv_unified;
        cp.no_perf         = true;
        llama_context * ctx = llama_init_from_model(const_cast<llama_model *>(model), cp);
        if (ctx == nullptr) {
            throw llama_failure("failed to create context");
        }
        // A pool of CPU worker threads that lives as long as the context. Without one, ggml starts n_threads - 1 new
        // threads for every graph it computes, i.e. for every decode step, and where the scheduler puts each new
        // thread decides that step's speed: on 2 cores a new worker often shared the decoding thread's core, the two
        // taking turns at every barrier (one stream of SmolLM2 ran at ~40 tokens/s for seconds at a time, against
        // ~150 otherwise; bench/README.md). poll 0: an idle worker sleeps at once instead of spinning on a core a
        // training job may need; waking it costs microseconds against milliseconds a step.
        // (ggml aborts when it cannot start a thread; it did so at every decode before, now once, here.)
        const int n_pool = std::max(n_threads, n_threads_batch);
        ggml_threadpool_params tpp = ggml_threadpool_params_default(n_pool);
        tpp.poll = 0;
        ggml_threadpool * threads = ggml_threadpool_new(&tpp);
        llama_attach_threadpool(ctx, threads, threads);
        context_handle * c;
        try {
            c = new context_handle();
        } catch (...) {
            llama_detach_threadpool(ctx);
            llama_free(ctx);
            ggml_threadpool_free(threads);
            throw;
        }
        c->threads    = threads;
        c->n_pool     = n_pool;
        c->ctx        = ctx;
        c->model      = model;
        c->n_batch    = (int32_t) llama_n_batch(ctx);
        c->n_seq_max  = (int32_t) llama_n_seq_max(ctx);
        c->n_ctx_seq  = (int32_t) llama_n_ctx_seq(ctx);
        c->kv_unified = kv_unified;
        c->batch      = llama_batch_init(c->n_batch, 0, 1);
        return to_handle(c);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        llama_batch_free(c->batch);
        llama_detach_threadpool(c->ctx);
        llama_free(c->ctx);
        ggml_threadpool_free(c->threads);  // after the context: nothing computes on it any more
        delete c;
    });
}

// [n_ctx, n_ctx_seq, n_batch, n_ubatch, n_seq_max]
JNIEXPORT jintArray JNICALL Java_dev_steer_llama_LlamaContext_nativeInfo(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jintArray) nullptr, [&] {
        const context_handle * c = context_of(h);
        return to_jints(env, { (int32_t) llama_n_ctx(c->ctx), c->n_ctx_seq, c->n_batch,
                               (int32_t) llama_n_ubatch(c->ctx), c->n_seq_max });
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeSetThreads(JNIEnv * env, jclass, jlong h, jint n, jint n_batch) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        if (n < 1 || n_batch < 1) {
            throw bad_argument("thread counts must be positive");
        }
        if (n > c->n_pool || n_batch > c->n_pool) {
            throw bad_argument("at most " + std::to_string(c->n_pool) + " threads: the context's worker pool");
        }
        llama_set_n_threads(c->ctx, n, n_batch);
    });
}

// One batch of n tokens (the arrays may be longer; the rest is ignored): token i goes to sequence seq[i] at
// position pos[i]; logits are kept where outputs[i] is true.
JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeDecode(
        JNIEnv * env, jclass, jlong h, jint n_tokens, jintArray tok_arr, jintArray pos_arr, jintArray seq_arr, jbooleanArray out_arr) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        if (tok_arr == nullptr || pos_arr == nullptr || seq_arr == nullptr || out_arr == nullptr) {
            throw bad_argument("batch arrays must not be null");
        }
        if (n_tokens <= 0) {
            throw bad_argument("empty batch");
        }
        if (n_tokens > c->n_batch) {
            throw bad_argument("batch of " + std::to_string(n_tokens) + " tokens exceeds n_batch " + std::to_string(c->n_batch));
        }
        const jsize n = n_tokens;
        if (env->GetArrayLength(tok_arr) < n || env->GetArrayLength(pos_arr) < n || env->GetArrayLength(seq_arr) < n ||
            env->GetArrayLength(out_arr) < n) {
            throw bad_argument("batch arrays are shorter than the token count");
        }
        std::vector<int32_t> tok(n), pos(n), seq(n);
        std::vector<jboolean> out(n);
        env->GetIntArrayRegion(tok_arr, 0, n, reinterpret_cast<jint *>(tok.data()));
        env->GetIntArrayRegion(pos_arr, 0, n, reinterpret_cast<jint *>(pos.data()));
        env->GetIntArrayRegion(seq_arr, 0, n, reinterpret_cast<jint *>(seq.data()));
        env->GetBooleanArrayRegion(out_arr, 0, n, out.data());
        check_pending(env);
        const llama_vocab * vocab = llama_model_get_vocab(c->model);
        for (jsize i = 0; i < n; i++) {
            check_token(vocab, tok[i]);
            check_seq(c, seq[i], false);
            if (pos[i] < 0 || pos[i] >= c->n_ctx_seq) {
                throw bad_argument("context overflow: position " + std::to_string(pos[i]) +
                                   " is outside the per-sequence context of " + std::to_string(c->n_ctx_seq) + " tokens");
            }
        }
        llama_batch & b = c->batch;
        b.n_tokens = n;
        for (jsize i = 0; i < n; i++) {
            b.token[i]     = tok[i];
            b.pos[i]       = pos[i];
            b.n_seq_id[i]  = 1;
            b.seq_id[i][0] = seq[i];
            b.logits[i]    = out[i] ? 1 : 0;
        }
        const int32_t rc = llama_decode(c->ctx, b);
        if (rc == 1) {
            throw llama_failure("decode failed: no room left in the KV cache (context full)");
        }
        if (rc != 0) {
            throw llama_failure("decode failed (code " + std::to_string(rc) + ")");
        }
    });
}

// The raw logits (n_vocab floats) at batch index idx of the last decode; idx -1 is the last output.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LlamaContext_nativeLogits(JNIEnv * env, jclass, jlong h, jint idx) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        context_handle * c = context_of(h);
        const float * logits = logits_at(c, idx);
        return to_jfloats(env, logits, (size_t) llama_vocab_n_tokens(llama_model_get_vocab(c->model)));
    });
}

// The k most likely tokens at batch index idx with their log-probabilities (log-softmax of the raw logits),
// written into ids/logprobs; returns how many were written (min(k, n_vocab, array length)).
JNIEXPORT jint JNICALL Java_dev_steer_llama_LlamaContext_nativeTopLogprobs(
        JNIEnv * env, jclass, jlong h, jint idx, jintArray ids_out, jfloatArray lps_out) {
    return guarded(env, (jint) 0, [&] {
        context_handle * c = context_of(h);
        if (ids_out == nullptr || lps_out == nullptr) {
            throw bad_argument("output arrays are null");
        }
        const float * logits = logits_at(c, idx);
        const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(c->model));
        const int32_t k = std::min({ (int32_t) env->GetArrayLength(ids_out), (int32_t) env->GetArrayLength(lps_out), n_vocab });
        const float log_z = log_normalizer(logits, n_vocab);
        std::vector<int32_t> order(n_vocab);
        for (int32_t i = 0; i < n_vocab; i++) {
            order[i] = i;
        }
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
        std::vector<float> lps(k);
        for (int32_t i = 0; i < k; i++) {
            lps[i] = logits[order[i]] - log_z;
        }
        env->SetIntArrayRegion(ids_out, 0, k, reinterpret_cast<const jint *>(order.data()));
        env->SetFloatArrayRegion(lps_out, 0, k, lps.data());
        return k;
    });
}

// log p(token) at batch index idx under the raw logits.
JNIEXPORT jfloat JNICALL Java_dev_steer_llama_LlamaContext_nativeTokenLogprob(JNIEnv * env, jclass, jlong h, jint idx, jint token) {
    return guarded(env, (jfloat) 0, [&] {
        context_handle * c = context_of(h);
        const llama_vocab * vocab = llama_model_get_vocab(c->model);
        check_token(vocab, token);
        const float * logits = logits_at(c, idx);
        const int32_t n_vocab = llama_vocab_n_tokens(vocab);
        return (jfloat) (logits[token] - log_normalizer(logits, n_vocab));
    });
}

// --- KV cache: positions [p0, p1) of a sequence; p0 < 0 means from 0, p1 < 0 means to the end ---

JNIEXPORT jboolean JNICALL Java_dev_steer_llama_LlamaContext_nativeSeqRemove(JNIEnv * env, jclass, jlong h, jint seq, jint p0, jint p1) {
    return guarded(env, (jboolean) JNI_FALSE, [&] {
        context_handle * c = context_of(h);
        check_seq(c, seq, true);
        return llama_memory_seq_rm(llama_get_memory(c->ctx), seq, p0, p1) ? JNI_TRUE : JNI_FALSE;
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeSeqCopy(JNIEnv * env, jclass, jlong h, jint src, jint dst, jint p0, jint p1) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        check_seq(c, src, false);
        check_seq(c, dst, false);
        // Without a unified KV buffer each sequence has its own stream, and llama.cpp copies only whole streams.
        if (!c->kv_unified && src != dst && (p0 > 0 || p1 >= 0)) {
            throw bad_argument("a partial sequence copy needs a unified KV cache; copy the whole sequence and trim it instead");
        }
        llama_memory_seq_cp(llama_get_memory(c->ctx), src, dst, p0, p1);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeSeqKeep(JNIEnv * env, jclass, jlong h, jint seq) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        check_seq(c, seq, false);
        llama_memory_seq_keep(llama_get_memory(c->ctx), seq);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeClear(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { llama_memory_clear(llama_get_memory(context_of(h)->ctx), true); });
}

// Highest position stored for a sequence, -1 when it is empty.
JNIEXPORT jint JNICALL Java_dev_steer_llama_LlamaContext_nativeSeqPosMax(JNIEnv * env, jclass, jlong h, jint seq) {
    return guarded(env, (jint) -1, [&] {
        context_handle * c = context_of(h);
        check_seq(c, seq, false);
        return (jint) llama_memory_seq_pos_max(llama_get_memory(c->ctx), seq);
    });
}

// Replace the context's LoRA adapters; takes effect from the next decode (the KV cache is not recomputed).
JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaContext_nativeSetAdapters(
        JNIEnv * env, jclass, jlong h, jlongArray adapter_arr, jfloatArray scale_arr) {
    guarded_void(env, [&] {
        context_handle * c = context_of(h);
        if (adapter_arr == nullptr || scale_arr == nullptr) {
            throw bad_argument("adapters and scales must not be null");
        }
        const jsize n = env->GetArrayLength(adapter_arr);
        if (env->GetArrayLength(scale_arr) != n) {
            throw bad_argument("one scale per adapter");
        }
        std::vector<jlong> hs((size_t) n);
        std::vector<float> scales((size_t) n);
        env->GetLongArrayRegion(adapter_arr, 0, n, hs.data());
        env->GetFloatArrayRegion(scale_arr, 0, n, scales.data());
        check_pending(env);
        std::vector<llama_adapter_lora *> adapters((size_t) n);
        for (jsize i = 0; i < n; i++) {
            adapters[i] = from_handle<llama_adapter_lora>(hs[i], "adapter");
            if (!std::isfinite(scales[i])) {
                throw bad_argument("adapter scale must be finite");
            }
        }
        if (llama_set_adapters_lora(c->ctx, adapters.data(), adapters.size(), scales.data()) != 0) {
            throw llama_failure("failed to set LoRA adapters");
        }
    });
}

}  // extern "C"
