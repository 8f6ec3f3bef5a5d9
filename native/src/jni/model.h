// Helpers shared by the entry points that take a model handle.
#pragma once

#include "jni_support.h"
#include "llama.h"

namespace steer {

inline llama_model * model_of(jlong h) { return from_handle<llama_model>(h, "model"); }

inline void check_token(const llama_vocab * vocab, int32_t token) {
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    if (token < 0 || token >= n_vocab) {
        throw bad_argument("token id " + std::to_string(token) + " is out of range [0, " + std::to_string(n_vocab) + ")");
    }
}

// Frees what the samplers keep for this model (prepared DRY samplers, LlamaSampler.cpp): called before the model is.
void forget_model_samplers(const llama_model * model);

}  // namespace steer
