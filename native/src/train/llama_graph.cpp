#include "graphs.h"

#include <cmath>

namespace steer::train {

const family & family_of(const model_view & m) {
    static const family llama = { llama_embed, llama_layer };
    static const family gemma3 = { gemma3_embed, gemma3_layer };
    return m.arch == "gemma3" ? gemma3 : llama;
}

ggml_tensor * hidden_states(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T) {
    return final_norm(ctx, m, blocks_between(ctx, m, lora, in, T, 0, m.n_layer, family_of(m).embed(ctx, m, in)));
}

ggml_tensor * blocks_between(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T,
                             int from, int to, ggml_tensor * x) {
    const family & f = family_of(m);
    for (int il = from; il < to; il++) {
        x = f.layer(ctx, m, lora, in, T, il, x);
    }
    return x;
}

ggml_tensor * final_norm(ggml_context * ctx, const model_view & m, ggml_tensor * x) {
    return rms_norm(ctx, m, x, "output_norm.weight");
}

// y = W x, plus the LoRA term (alpha/rank) B (A x) when this weight has one. W x goes through ggml's own matmul, as
// in serving, so that the forward trained on is the one served (an F32 path for the trainer alone was tried and
// withdrawn: bench/README.md, 2026-12-04).
ggml_tensor * linear(ggml_context * ctx, const model_view & m, const lora_set * lora, const std::string & name, ggml_tensor * x) {
    ggml_tensor * y = ggml_mul_mat(ctx, m.weight(name), x);
    if (const lora_pair * p = lora ? lora->find(name) : nullptr) {
        ggml_tensor * ab = ggml_mul_mat(ctx, p->b, ggml_mul_mat(ctx, p->a, x));
        y = ggml_add(ctx, y, ggml_scale(ctx, ab, lora->scale()));
    }
    return y;
}

static ggml_tensor * with_bias(ggml_context * ctx, const model_view & m, ggml_tensor * y, const std::string & bias) {
    ggml_tensor * b = m.optional(bias);
    return b ? ggml_add(ctx, y, b) : y;
}

ggml_tensor * rms_norm(ggml_context * ctx, const model_view & m, ggml_tensor * x, const std::string & weight) {
    return ggml_mul(ctx, ggml_rms_norm(ctx, x, m.norm_eps), m.weight(weight));
}

ggml_tensor * llama_embed(ggml_context * ctx, const model_view & m, const packed_inputs & in) {
    return ggml_get_rows(ctx, m.weight("token_embd.weight"), in.tokens);
}

ggml_tensor * llama_layer(ggml_context * ctx, const model_view & m, const lora_set * lora, const packed_inputs & in, int T, int il, ggml_tensor * x) {
    const int hd = m.head_dim;
    const float kq_scale = 1.0f / std::sqrt((float) hd);
    ggml_tensor * rope_freqs = m.optional("rope_freqs.weight");  // Llama 3.1 style frequency factors
    const std::string p = "blk." + std::to_string(il) + ".";
    // attention
    ggml_tensor * h = rms_norm(ctx, m, x, p + "attn_norm.weight");
    ggml_tensor * q = ggml_reshape_3d(ctx, with_bias(ctx, m, linear(ctx, m, lora, p + "attn_q.weight", h), p + "attn_q.bias"), hd, m.n_head, T);
    ggml_tensor * k = ggml_reshape_3d(ctx, with_bias(ctx, m, linear(ctx, m, lora, p + "attn_k.weight", h), p + "attn_k.bias"), hd, m.n_head_kv, T);
    ggml_tensor * v = ggml_reshape_3d(ctx, with_bias(ctx, m, linear(ctx, m, lora, p + "attn_v.weight", h), p + "attn_v.bias"), hd, m.n_head_kv, T);
    if (m.optional(p + "attn_q_norm.weight")) {  // qwen3: RMS norm over each head's vector
        q = rms_norm(ctx, m, q, p + "attn_q_norm.weight");
        k = rms_norm(ctx, m, k, p + "attn_k_norm.weight");
    }
    q = ggml_rope_ext(ctx, q, in.positions, rope_freqs, hd, m.rope_type, m.n_ctx_orig, m.freq_base, m.freq_scale, 0.0f, 1.0f, 32.0f, 1.0f);
    k = ggml_rope_ext(ctx, k, in.positions, rope_freqs, hd, m.rope_type, m.n_ctx_orig, m.freq_base, m.freq_scale, 0.0f, 1.0f, 32.0f, 1.0f);
    ggml_tensor * qh  = ggml_permute(ctx, q, 0, 2, 1, 3);                 // [hd, T, n_head]
    ggml_tensor * kh  = ggml_permute(ctx, k, 0, 2, 1, 3);                 // [hd, T, n_head_kv]; heads broadcast (GQA)
    ggml_tensor * kq  = ggml_mul_mat(ctx, kh, qh);                        // [T_k, T_q, n_head]
    kq = ggml_soft_max_ext(ctx, kq, in.mask, kq_scale, 0.0f);
    ggml_tensor * vt  = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3)); // [T, hd, n_head_kv]
    ggml_tensor * kqv = ggml_mul_mat(ctx, vt, kq);                        // [hd, T_q, n_head]
    ggml_tensor * o   = ggml_cont_2d(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3), hd * m.n_head, T);
    x = ggml_add(ctx, x, linear(ctx, m, lora, p + "attn_output.weight", o));
    // MLP
    h = rms_norm(ctx, m, x, p + "ffn_norm.weight");
    ggml_tensor * g = linear(ctx, m, lora, p + "ffn_gate.weight", h);
    ggml_tensor * u = linear(ctx, m, lora, p + "ffn_up.weight", h);
    return ggml_add(ctx, x, linear(ctx, m, lora, p + "ffn_down.weight", ggml_swiglu_split(ctx, g, u)));
}

ggml_tensor * lm_logits(ggml_context * ctx, const model_view & m, ggml_tensor * hidden_rows) {
    ggml_tensor * head = m.optional("output.weight");
    return ggml_mul_mat(ctx, head ? head : m.weight("token_embd.weight"), hidden_rows);
}

}  // namespace steer::train
