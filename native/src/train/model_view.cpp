#include "model_view.h"

#include "ggml-backend.h"

#include <cmath>
#include <stdexcept>
#include <vector>

// Not in llama.h: llama.cpp's map of the loaded tensors by GGUF name (src/llama-model.h). We link llama.cpp
// statically from one pinned version, so this internal symbol is stable for us.
const std::vector<std::pair<std::string, ggml_tensor *>> & llama_internal_get_tensor_map(const llama_model * model);

namespace steer::train {

ggml_tensor * model_view::weight(const std::string & name) const {
    auto it = weights.find(name);
    if (it == weights.end()) {
        throw std::invalid_argument("the model has no tensor '" + name + "'");
    }
    return it->second;
}

ggml_tensor * model_view::optional(const std::string & name) const {
    auto it = weights.find(name);
    return it == weights.end() ? nullptr : it->second;
}

static float meta_float(const llama_model * model, const std::string & key, float fallback) {
    char buf[64];
    return llama_model_meta_val_str(model, key.c_str(), buf, sizeof buf) >= 0 ? std::stof(buf) : fallback;
}

model_view read_model_view(const llama_model * model) {
    model_view v;
    char buf[128];
    if (llama_model_meta_val_str(model, "general.architecture", buf, sizeof buf) < 0) {
        throw std::invalid_argument("the model has no general.architecture");
    }
    v.arch = buf;
    if (v.arch != "llama" && v.arch != "qwen2" && v.arch != "qwen3" && v.arch != "gemma3") {
        throw std::invalid_argument("no training graph for architecture '" + v.arch + "' (supported: llama, qwen2, qwen3, gemma3)");
    }
    v.n_embd     = llama_model_n_embd(model);
    v.n_head     = llama_model_n_head(model);
    v.n_head_kv  = llama_model_n_head_kv(model);
    v.head_dim   = (int) meta_float(model, v.arch + ".attention.key_length", (float) (v.n_embd / v.n_head));
    v.n_layer    = llama_model_n_layer(model);
    v.n_vocab    = llama_vocab_n_tokens(llama_model_get_vocab(model));
    v.n_ctx_orig = llama_model_n_ctx_train(model);
    v.rope_type  = llama_model_rope_type(model);
    v.norm_eps   = meta_float(model, v.arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
    v.freq_base  = meta_float(model, v.arch + ".rope.freq_base", 10000.0f);
    v.freq_scale = llama_model_rope_freq_scale_train(model);
    if (v.arch == "gemma3") {
        // as src/models/gemma3.cpp loads them
        v.n_swa = llama_model_n_swa(model);
        v.swa_pattern = (int) meta_float(model, v.arch + ".attention.sliding_window_pattern", 6.0f);
        v.freq_base_swa = meta_float(model, v.arch + ".rope.freq_base_swa", 10000.0f);
        v.attn_scale = 1.0f / std::sqrt((float) v.head_dim);
        if (v.n_layer == 62) {
            v.attn_scale = 1.0f / std::sqrt((float) (v.n_embd / v.n_head));  // the 27B model
        }
        if (meta_float(model, v.arch + ".final_logit_softcapping", 0.0f) != 0.0f) {
            throw std::invalid_argument("gemma3 with final logit softcapping is not supported by the trainer (no tanh backward)");
        }
    }
    for (const auto & [name, t] : llama_internal_get_tensor_map(model)) {
        v.weights[name] = t;
    }
    // The backward pass reads the weights with ops (OUT_PROD) that CPU-repacked buffers do not support, and that
    // ggml runs (with native/patches/0003) for F32, F16, BF16 and the block-quantized types only: refuse anything
    // else here rather than let ggml abort the process mid-step.
    for (const auto & [name, t] : v.weights) {
        if (t->buffer != nullptr && std::string(ggml_backend_buffer_name(t->buffer)).find("REPACK") != std::string::npos) {
            throw std::invalid_argument("weight '" + name + "' is repacked for CPU serving; load the model without weight repacking to train");
        }
        const bool trainable = t->type == GGML_TYPE_F32 || t->type == GGML_TYPE_F16 || t->type == GGML_TYPE_BF16 ||
                               (ggml_is_quantized(t->type) && ggml_get_type_traits(t->type)->to_float != nullptr);
        if (!trainable) {
            throw std::invalid_argument("weight '" + name + "' has type " + ggml_type_name(t->type) + ", which the trainer cannot backpropagate through");
        }
    }
    return v;
}

}  // namespace steer::train
