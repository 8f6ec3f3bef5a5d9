// The frozen base model as the trainer sees it: hyperparameters and the weight tensors llama.cpp loaded for serving
// (no copy is made: the training graph reads the very tensors serving uses).
#pragma once

#include "llama.h"
#include "ggml.h"

#include <map>
#include <string>

namespace steer::train {

struct model_view {
    std::string arch;
    int n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_layer = 0, n_vocab = 0, n_ctx_orig = 0, rope_type = 0;
    float norm_eps = 0, freq_base = 0, freq_scale = 0;
    // sliding-window attention (gemma3): window size (0: none), every swa_pattern-th layer is global
    int n_swa = 0, swa_pattern = 0;
    float freq_base_swa = 10000.0f;
    float attn_scale = 0;  // gemma3 scales q by this before attention
    std::map<std::string, ggml_tensor *> weights;  // GGUF name -> tensor

    bool is_swa(int il) const { return n_swa > 0 && swa_pattern > 0 && il % swa_pattern < swa_pattern - 1; }

    ggml_tensor * weight(const std::string & name) const;     // throws if missing
    ggml_tensor * optional(const std::string & name) const;   // null if missing
};

// Reads the view of a loaded model; throws std::invalid_argument for an architecture without a training graph.
model_view read_model_view(const llama_model * model);

}  // namespace steer::train
