// The forward passes, written out as ggml graphs. The llama family's (llama, qwen2, qwen3) is a ggml graph over the serving weights plus
// LoRA: embed -> per layer [RMS norm -> q,k,v (+LoRA, + qwen2's biases) -> (qwen3's per-head q/k RMS norms) ->
// RoPE -> causal attention -> out (+LoRA) -> residual -> RMS norm -> SwiGLU MLP (+LoRA) -> residual] -> final RMS
// norm. It must match llama.cpp's own decode graph (tests compare logits): every step mirrors src/models/llama.cpp,
// qwen2.cpp and qwen3.cpp. The rope type (normal or NEOX) comes from the model.
#pragma once

#include "lora.h"

#include <vector>

namespace steer::train {

struct packed_inputs {
    ggml_tensor * tokens;     // I32 [T]
    ggml_tensor * positions;  // I32 [T]
    ggml_tensor * mask;       // F32 [T, T]: 0 where query row may see key column, -inf elsewhere
    ggml_tensor * mask_swa;   // the same within the sliding window (models with sliding-window layers), else null
};

// One architecture family's forward, in the pieces activation checkpointing cuts it into: the embeddings, then one
// transformer block at a time (x_l -> x_{l+1}). The final RMS norm is the same for every family.
struct family {
    ggml_tensor * (*embed)(ggml_context * ctx, const model_view & m, const packed_inputs & in);
    ggml_tensor * (*layer)(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T, int il, ggml_tensor * x);
};
const family & family_of(const model_view & m);

// Hidden states after the final norm, [n_embd, T], for the model's architecture. lora may be null (the base model).
ggml_tensor * hidden_states(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T);
// Blocks from..to-1 on x, block from's input ([n_embd, T]). Without the final norm: hidden_states is embed, then
// blocks 0..n_layer-1, then final_norm.
ggml_tensor * blocks_between(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T,
                             int from, int to, ggml_tensor * x);
ggml_tensor * final_norm(ggml_context * ctx, const model_view & m, ggml_tensor * x);

// The families: llama (llama, qwen2, qwen3) and gemma3.
ggml_tensor * llama_embed(ggml_context * ctx, const model_view & m, const packed_inputs & in);
ggml_tensor * llama_layer(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T, int il, ggml_tensor * x);
ggml_tensor * gemma3_embed(ggml_context * ctx, const model_view & m, const packed_inputs & in);
ggml_tensor * gemma3_layer(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T, int il, ggml_tensor * x);

// Logits for the given hidden rows, [n_vocab, rows]: the LM head (output.weight, or the tied embeddings).
ggml_tensor * lm_logits(ggml_context * ctx, const model_view & m, ggml_tensor * hidden_rows);

// Shared pieces: y = W x (+ (alpha/rank) B (A x) when W has a LoRA pair); RMS norm times its weight.
ggml_tensor * linear(ggml_context * ctx, const model_view & m, const lora_set * lora, const std::string & name, ggml_tensor * x);
ggml_tensor * rms_norm(ggml_context * ctx, const model_view & m, ggml_tensor * x, const std::string & weight);

}  // namespace steer::train
