// The native side of dev.steer.llama.LlamaContext: a llama_context plus what we need to validate its inputs.
#pragma once

#include "model.h"

namespace steer {

struct context_handle {
    llama_context * ctx    = nullptr;
    const llama_model * model = nullptr;
    llama_batch batch{};       // reused by every decode; capacity n_batch tokens, one sequence each
    int32_t n_batch   = 0;
    int32_t n_seq_max = 0;
    int32_t n_ctx_seq = 0;     // positions a single sequence may use
    bool    kv_unified = false;
    ggml_threadpool * threads = nullptr;  // the CPU worker threads every decode of this context runs on
    int32_t n_pool = 0;                   // their number, the caller's thread included: the most a decode may use
};

inline context_handle * context_of(jlong h) { return from_handle<context_handle>(h, "context"); }

}  // namespace steer
