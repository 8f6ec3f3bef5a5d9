#include "lora.h"

#include "gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace steer::train {

lora_set::lora_set(const model_view & model, const std::vector<std::string> & targets, int rank, float alpha, int layers,
                   ggml_backend_t backend)
        : rank_(rank), alpha_(alpha) {
    if (rank < 1 || rank > 1024) {
        throw std::invalid_argument("LoRA rank must be in [1, 1024]");
    }
    if (!std::isfinite(alpha) || alpha <= 0) {
        throw std::invalid_argument("LoRA alpha must be > 0");
    }
    if (targets.empty()) {
        throw std::invalid_argument("no LoRA targets");
    }
    if (layers < 0) {
        throw std::invalid_argument("LoRA layers must be >= 0 (0: every layer)");
    }
    first_layer_ = layers == 0 ? 0 : std::max(0, model.n_layer - layers);
    static const std::vector<std::string> known = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (const auto & t : targets) {
        if (std::find(known.begin(), known.end(), t) == known.end()) {
            throw std::invalid_argument("unknown LoRA target '" + t + "'");
        }
    }
    ggml_init_params ip = { (size_t) (2 * model.n_layer * targets.size() + 8) * ggml_tensor_overhead(), nullptr, true };
    ctx_ = ggml_init(ip);
    for (int il = first_layer_; il < model.n_layer; il++) {
        for (const auto & t : targets) {
            const std::string name = "blk." + std::to_string(il) + "." + t + ".weight";
            const ggml_tensor * w = model.weight(name);
            lora_pair p;
            p.a = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, w->ne[0], rank);
            p.b = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, rank, w->ne[1]);
            ggml_set_name(p.a, (name + ".lora_a").c_str());
            ggml_set_name(p.b, (name + ".lora_b").c_str());
            ggml_set_param(p.a);
            ggml_set_param(p.b);
            pairs_[name] = p;
            params_.push_back(p.a);
            params_.push_back(p.b);
        }
    }
    buf_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
    if (buf_ == nullptr) {
        ggml_free(ctx_);
        throw std::runtime_error("could not allocate the LoRA parameters");
    }
}

lora_set::~lora_set() {
    ggml_backend_buffer_free(buf_);
    ggml_free(ctx_);
}

void lora_set::init(uint32_t seed) {
    std::mt19937 rng(seed);
    for (auto & [name, p] : pairs_) {
        std::normal_distribution<float> d(0.0f, 1.0f / std::sqrt((float) p.a->ne[0]));
        std::vector<float> a(ggml_nelements(p.a)), b(ggml_nelements(p.b), 0.0f);
        for (auto & x : a) {
            x = d(rng);
        }
        ggml_backend_tensor_set(p.a, a.data(), 0, ggml_nbytes(p.a));
        ggml_backend_tensor_set(p.b, b.data(), 0, ggml_nbytes(p.b));
    }
}

const lora_pair * lora_set::find(const std::string & weight_name) const {
    auto it = pairs_.find(weight_name);
    return it == pairs_.end() ? nullptr : &it->second;
}

ggml_tensor * lora_set::param(const std::string & tensor_name) const {
    for (ggml_tensor * t : params_) {
        if (tensor_name == ggml_get_name(t)) {
            return t;
        }
    }
    throw std::invalid_argument("no LoRA tensor '" + tensor_name + "'");
}

void lora_set::write_gguf(const std::string & path, const std::string & arch) const {
    gguf_context * g = gguf_init_empty();
    gguf_set_val_str(g, "general.type", "adapter");
    gguf_set_val_str(g, "general.architecture", arch.c_str());
    gguf_set_val_str(g, "adapter.type", "lora");
    gguf_set_val_f32(g, "adapter.lora.alpha", alpha_);  // llama.cpp applies alpha / rank, as training does
    // gguf reads each tensor through its backend buffer when it has one (CPU or GPU memory alike), so the
    // tensors go in as they are. Pointing their data at a host copy instead (gguf_set_tensor_data) breaks on a GPU:
    // gguf would still ask the GPU buffer for the bytes, at the host address (CUDA: "invalid argument", an abort).
    for (ggml_tensor * t : params_) {
        gguf_add_tensor(g, t);
    }
    const std::string tmp = path + ".tmp";
    const bool ok = gguf_write_to_file(g, tmp.c_str(), false);
    gguf_free(g);
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("could not write the adapter to '" + path + "'");
    }
}

}  // namespace steer::train
