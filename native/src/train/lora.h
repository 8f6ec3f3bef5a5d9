// The trainable parameters: one LoRA pair (A, B) per targeted weight W, applied as y = W x + (alpha / rank) B (A x).
// Shapes in ggml order, as llama.cpp's adapter loader expects: W = [n_in, n_out], A = [n_in, rank], B = [rank, n_out].
#pragma once

#include <algorithm>

#include "model_view.h"

#include "ggml-backend.h"

#include <map>
#include <string>
#include <vector>

namespace steer::train {

struct lora_pair {
    ggml_tensor * a = nullptr;
    ggml_tensor * b = nullptr;
};

class lora_set {
  public:
    // targets: short names such as "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down";
    // layers: how many of the model's blocks, from the last down, carry them (0: every block).
    lora_set(const model_view & model, const std::vector<std::string> & targets, int rank, float alpha, int layers,
             ggml_backend_t backend);
    ~lora_set();
    lora_set(const lora_set &) = delete;
    lora_set & operator=(const lora_set &) = delete;

    // Standard init: A ~ N(0, 1/n_in) (PEFT's Kaiming-like scale), B = 0, so training starts from the base model.
    void init(uint32_t seed);

    const lora_pair * find(const std::string & weight_name) const;
    float scale() const { return alpha_ / (float) rank_; }
    int rank() const { return rank_; }
    // The first block with a LoRA pair: the blocks below it are the base model's, whatever the training.
    int first_layer() const { return first_layer_; }
    float alpha() const { return alpha_; }

    // Parameter tensors in a fixed order (A then B per target, layers in order): the order the graph visits them.
    const std::vector<ggml_tensor *> & params() const { return params_; }
    bool owns(const ggml_tensor * t) const { return std::find(params_.begin(), params_.end(), t) != params_.end(); }
    ggml_tensor * param(const std::string & tensor_name) const;  // "blk.0.attn_q.weight.lora_a"; throws if unknown

    // Writes a GGUF adapter llama_adapter_lora_init loads; to a temporary file renamed into place (atomic).
    void write_gguf(const std::string & path, const std::string & arch) const;

  private:
    int rank_;
    float alpha_;
    int first_layer_ = 0;
    ggml_context * ctx_ = nullptr;
    ggml_backend_buffer_t buf_ = nullptr;
    std::map<std::string, lora_pair> pairs_;
    std::vector<ggml_tensor *> params_;
};

}  // namespace steer::train
