// dev.steer.llama.LlamaModel: load/free a GGUF model, its metadata, and its tokenizer.
#include "model.h"

#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

// Not in llama.h: llama.cpp's map of the loaded tensors by GGUF name (src/llama-model.h), as the trainer reads it
// (native/src/train/model_view.cpp); one pinned llama.cpp linked statically keeps this internal symbol stable.
const std::vector<std::pair<std::string, ggml_tensor *>> & llama_internal_get_tensor_map(const llama_model * model);

using namespace steer;

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LlamaModel_nativeLoad(
        JNIEnv * env, jclass, jbyteArray path_bytes, jint n_gpu_layers, jboolean use_mmap, jboolean use_extra_bufts) {
    return guarded(env, (jlong) 0, [&] {
        const std::string path = to_string(env, path_bytes);
        FILE * f = fopen(path.c_str(), "rb");
        if (f == nullptr) {
            throw bad_argument("cannot open model file '" + path + "'");
        }
        fclose(f);
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers    = n_gpu_layers;
        mp.load_mode       = use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
        mp.use_extra_bufts = use_extra_bufts;
        llama_model * model = llama_model_load_from_file(path.c_str(), mp);
        if (model == nullptr) {
            throw llama_failure("failed to load model '" + path + "'");
        }
        return to_handle(model);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaModel_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] {
        forget_model_samplers(model_of(h));
        llama_model_free(model_of(h));
    });
}

// Integer facts about the model, in this order (LlamaModel.java reads them by the same indices):
// n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, bos, eos, eot, add_bos, n_swa
JNIEXPORT jintArray JNICALL Java_dev_steer_llama_LlamaModel_nativeShape(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jintArray) nullptr, [&] {
        const llama_model * m = model_of(h);
        const llama_vocab * v = llama_model_get_vocab(m);
        return to_jints(env, {
            llama_vocab_n_tokens(v), llama_model_n_ctx_train(m), llama_model_n_embd(m), llama_model_n_layer(m),
            llama_model_n_head(m), llama_model_n_head_kv(m),
            llama_vocab_bos(v), llama_vocab_eos(v), llama_vocab_eot(v), llama_vocab_get_add_bos(v) ? 1 : 0,
            llama_model_n_swa(m),
        });
    });
}

// [size in bytes, number of parameters]
JNIEXPORT jlongArray JNICALL Java_dev_steer_llama_LlamaModel_nativeSize(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jlongArray) nullptr, [&] {
        const llama_model * m = model_of(h);
        jlong v[2] = { (jlong) llama_model_size(m), (jlong) llama_model_n_params(m) };
        jlongArray arr = env->NewLongArray(2);
        check_pending(env);
        env->SetLongArrayRegion(arr, 0, 2, v);
        return arr;
    });
}

JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_LlamaModel_nativeDescription(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        char buf[256];
        const int n = llama_model_desc(model_of(h), buf, sizeof buf);
        return to_bytes(env, std::string(buf, n > 0 ? (size_t) n : 0));
    });
}

// All GGUF metadata as UTF-8 byte[] pairs: key0, value0, key1, value1, ... (arrays are summarized by llama.cpp).
JNIEXPORT jobjectArray JNICALL Java_dev_steer_llama_LlamaModel_nativeMetadata(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jobjectArray) nullptr, [&] {
        const llama_model * m = model_of(h);
        const int n = llama_model_meta_count(m);
        jclass byte_array = env->FindClass("[B");
        check_pending(env);
        jobjectArray out = env->NewObjectArray(2 * n, byte_array, nullptr);
        check_pending(env);
        std::vector<char> buf(1024);
        auto read = [&](auto fn, int i) {
            int len = fn(m, i, buf.data(), buf.size());
            if (len >= (int) buf.size()) {
                buf.resize((size_t) len + 1);
                len = fn(m, i, buf.data(), buf.size());
            }
            return std::string(buf.data(), len > 0 ? (size_t) len : 0);
        };
        for (int i = 0; i < n; i++) {
            jbyteArray k = to_bytes(env, read(llama_model_meta_key_by_index, i));
            jbyteArray v = to_bytes(env, read(llama_model_meta_val_str_by_index, i));
            env->SetObjectArrayElement(out, 2 * i, k);
            env->SetObjectArrayElement(out, 2 * i + 1, v);
            env->DeleteLocalRef(k);
            env->DeleteLocalRef(v);
        }
        return out;
    });
}

// The model's own chat template (Jinja source), or null when the GGUF has none.
JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_LlamaModel_nativeChatTemplate(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jbyteArray) nullptr, [&]() -> jbyteArray {
        const char * t = llama_model_chat_template(model_of(h), nullptr);
        return t == nullptr ? nullptr : to_bytes(env, t);
    });
}

JNIEXPORT jintArray JNICALL Java_dev_steer_llama_LlamaModel_nativeTokenize(
        JNIEnv * env, jclass, jlong h, jbyteArray text_bytes, jboolean add_special, jboolean parse_special) {
    return guarded(env, (jintArray) nullptr, [&] {
        const llama_vocab * v = llama_model_get_vocab(model_of(h));
        const std::string text = to_string(env, text_bytes);
        if (text.size() > (size_t) INT32_MAX / 4) {
            throw bad_argument("text too long to tokenize (" + std::to_string(text.size()) + " bytes)");
        }
        std::vector<llama_token> tokens(text.size() + 8);
        int n = llama_tokenize(v, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
        if (n < 0 && n != INT32_MIN) {
            tokens.resize((size_t) -n);
            n = llama_tokenize(v, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
        }
        if (n < 0) {
            throw llama_failure("tokenization failed");
        }
        tokens.resize((size_t) n);
        return to_jints(env, tokens);
    });
}

// The raw bytes of one token; may be a fragment of a UTF-8 character (byte-fallback tokens).
JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_LlamaModel_nativeTokenPiece(
        JNIEnv * env, jclass, jlong h, jint token, jboolean special) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        const llama_vocab * v = llama_model_get_vocab(model_of(h));
        check_token(v, token);
        char buf[256];
        int n = llama_token_to_piece(v, token, buf, sizeof buf, 0, special);
        if (n < 0) {
            std::string big((size_t) -n, '\0');
            n = llama_token_to_piece(v, token, big.data(), (int32_t) big.size(), 0, special);
            return to_bytes(env, big.substr(0, n > 0 ? (size_t) n : 0));
        }
        return to_bytes(env, std::string(buf, (size_t) n));
    });
}

JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_LlamaModel_nativeDetokenize(
        JNIEnv * env, jclass, jlong h, jintArray token_arr, jboolean remove_special, jboolean unparse_special) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        const llama_vocab * v = llama_model_get_vocab(model_of(h));
        const std::vector<int32_t> tokens = to_ints(env, token_arr);
        for (int32_t t : tokens) {
            check_token(v, t);
        }
        std::string text(tokens.size() * 8 + 16, '\0');
        int n = llama_detokenize(v, tokens.data(), (int32_t) tokens.size(), text.data(), (int32_t) text.size(), remove_special, unparse_special);
        if (n < 0) {
            text.resize((size_t) -n);
            n = llama_detokenize(v, tokens.data(), (int32_t) tokens.size(), text.data(), (int32_t) text.size(), remove_special, unparse_special);
        }
        if (n < 0) {
            throw llama_failure("detokenization failed");
        }
        text.resize((size_t) n);
        return to_bytes(env, text);
    });
}

// The sum of the input embeddings (rows of token_embd.weight, dequantized to floats) of the given tokens: what routing
// compares prompts by (dev.steer.adapters.Scope). A model whose output layer reuses the table (SmolLM2, Gemma 3) can hold
// two tensors of that name, the input layer's and a copy for the output layer in another buffer (a GPU's, or a CPU
// buffer repacked for matmuls, whose rows are not laid out as GGUF rows and which cannot be read back: reading it
// would crash the process). The input layer's is in host memory (llama.cpp keeps the input layer on the CPU): that
// one is read; failing that, one in a device buffer through the backend; a repacked one never.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LlamaModel_nativeEmbeddingSum(JNIEnv * env, jclass, jlong h, jintArray token_arr) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        const llama_model * model = model_of(h);
        const llama_vocab * v = llama_model_get_vocab(model);
        const std::vector<int32_t> tokens = to_ints(env, token_arr);
        for (int32_t t : tokens) {
            check_token(v, t);
        }
        const ggml_tensor * table = nullptr;
        bool table_host = false;
        for (const auto & [name, t] : llama_internal_get_tensor_map(model)) {
            if (name != "token_embd.weight") {
                continue;
            }
            if (t->buffer != nullptr && std::string(ggml_backend_buffer_name(t->buffer)).find("REPACK") != std::string::npos) {
                continue;
            }
            const bool host = t->buffer == nullptr || ggml_backend_buffer_is_host(t->buffer);
            if (table == nullptr || (host && !table_host)) {
                table = t;
                table_host = host;
            }
        }
        if (table == nullptr || table->ne[1] < llama_vocab_n_tokens(v)) {
            throw llama_failure("the model has no token embedding table to route by");
        }
        const int64_t n_embd = table->ne[0];
        const ggml_type_traits * traits = ggml_get_type_traits(table->type);
        if (table->type != GGML_TYPE_F32 && traits->to_float == nullptr) {
            throw llama_failure(std::string("token embeddings of type ") + ggml_type_name(table->type) + " cannot be read as floats");
        }
        const bool host = table_host;
        std::vector<char> raw(table->nb[1]);
        std::vector<float> row((size_t) n_embd), sum((size_t) n_embd, 0.0f);
        for (int32_t t : tokens) {
            const char * src = (const char *) table->data + (size_t) t * table->nb[1];
            if (!host) {
                ggml_backend_tensor_get(const_cast<ggml_tensor *>(table), raw.data(), (size_t) t * table->nb[1], table->nb[1]);
                src = raw.data();
            }
            if (table->type == GGML_TYPE_F32) {
                std::copy_n((const float *) src, n_embd, row.begin());
            } else {
                traits->to_float(src, row.data(), n_embd);
            }
            for (int64_t i = 0; i < n_embd; i++) {
                sum[(size_t) i] += row[(size_t) i];
            }
        }
        return to_jfloats(env, sum.data(), sum.size());
    });
}

JNIEXPORT jboolean JNICALL Java_dev_steer_llama_LlamaModel_nativeIsEndOfGeneration(JNIEnv * env, jclass, jlong h, jint token) {
    return guarded(env, (jboolean) JNI_FALSE, [&] {
        const llama_vocab * v = llama_model_get_vocab(model_of(h));
        check_token(v, token);
        return llama_vocab_is_eog(v, token) ? JNI_TRUE : JNI_FALSE;
    });
}

}  // extern "C"
