// Gemma 3's forward pass, mirroring src/models/gemma3.cpp: embeddings scaled by sqrt(n_embd); per layer
// [RMS norm -> q,k,v (+LoRA) -> per-head q/k RMS norms -> RoPE (sliding-window layers use their own base) ->
// q scaled by the attention scale -> causal attention, within the window on sliding-window layers -> out (+LoRA) ->
// post-attention RMS norm -> residual -> RMS norm -> gelu(gate) * up -> down (+LoRA) -> post-FFN RMS norm ->
// residual]; the final RMS norm is the shared final_norm. The MLP uses ggml_gelu: the same table-based GELU as
// llama.cpp's fused geglu (so the forwards match), made trainable by native/patches/0001-ggml-gelu-backward.patch.
#include "graphs.h"

#include <cmath>

namespace steer::train {

ggml_tensor * gemma3_embed(ggml_context * ctx, const model_view & m, const packed_inputs & in) {
    return ggml_scale(ctx, ggml_get_rows(ctx, m.weight("token_embd.weight"), in.tokens), std::sqrt((float) m.n_embd));
}

ggml_tensor * gemma3_layer(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T, int il, ggml_tensor * x) {
    const int hd = m.head_dim;
    const std::string p = "blk." + std::to_string(il) + ".";
    const bool swa = m.is_swa(il);
    const float base = swa ? m.freq_base_swa : m.freq_base;
    const float scale = swa ? 1.0f : m.freq_scale;
    ggml_tensor * h = rms_norm(ctx, m, x, p + "attn_norm.weight");
    ggml_tensor * q = ggml_reshape_3d(ctx, linear(ctx, m, lora, p + "attn_q.weight", h), hd, m.n_head, T);
    ggml_tensor * k = ggml_reshape_3d(ctx, linear(ctx, m, lora, p + "attn_k.weight", h), hd, m.n_head_kv, T);
    ggml_tensor * v = ggml_reshape_3d(ctx, linear(ctx, m, lora, p + "attn_v.weight", h), hd, m.n_head_kv, T);
    q = rms_norm(ctx, m, q, p + "attn_q_norm.weight");
    k = rms_norm(ctx, m, k, p + "attn_k_norm.weight");
    q = ggml_rope_ext(ctx, q, in.positions, nullptr, hd, m.rope_type, m.n_ctx_orig, base, scale, 0.0f, 1.0f, 32.0f, 1.0f);
    k = ggml_rope_ext(ctx, k, in.positions, nullptr, hd, m.rope_type, m.n_ctx_orig, base, scale, 0.0f, 1.0f, 32.0f, 1.0f);
    // llama.cpp scales q by the attention scale (bit-exact forwards matter: the table-based GELU further on
    // turns rounding differences into visible ones). Scaling the contiguous permuted copy multiplies the same
    // numbers, and keeps ggml_scale's backward on a contiguous gradient, which it requires.
    ggml_tensor * qh  = ggml_scale(ctx, ggml_cont(ctx, ggml_permute(ctx, q, 0, 2, 1, 3)), m.attn_scale);
    ggml_tensor * kh  = ggml_permute(ctx, k, 0, 2, 1, 3);
    ggml_tensor * kq  = ggml_mul_mat(ctx, kh, qh);
    kq = ggml_soft_max_ext(ctx, kq, swa ? in.mask_swa : in.mask, 1.0f, 0.0f);
    ggml_tensor * vt  = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));
    ggml_tensor * kqv = ggml_mul_mat(ctx, vt, kq);
    ggml_tensor * o   = ggml_cont_2d(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3), hd * m.n_head, T);
    ggml_tensor * attn = rms_norm(ctx, m, linear(ctx, m, lora, p + "attn_output.weight", o), p + "post_attention_norm.weight");
    x = ggml_add(ctx, x, attn);
    h = rms_norm(ctx, m, x, p + "ffn_norm.weight");
    ggml_tensor * g = linear(ctx, m, lora, p + "ffn_gate.weight", h);
    ggml_tensor * u = linear(ctx, m, lora, p + "ffn_up.weight", h);
    ggml_tensor * mlp = linear(ctx, m, lora, p + "ffn_down.weight", ggml_mul(ctx, ggml_gelu(ctx, g), u));
    return ggml_add(ctx, x, rms_norm(ctx, m, mlp, p + "post_ffw_norm.weight"));
}

}  // namespace steer::train
