// dev.steer.llama.LoraAdapter: a GGUF LoRA adapter loaded at run time for a model (applied per context).
#include "model.h"

#include <algorithm>
#include <cstdio>

using namespace steer;

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LoraAdapter_nativeLoad(JNIEnv * env, jclass, jlong model_h, jbyteArray path_bytes) {
    return guarded(env, (jlong) 0, [&] {
        llama_model * model = model_of(model_h);
        const std::string path = to_string(env, path_bytes);
        FILE * f = fopen(path.c_str(), "rb");
        if (f == nullptr) {
            throw bad_argument("cannot open adapter file '" + path + "'");
        }
        fclose(f);
        llama_adapter_lora * a = llama_adapter_lora_init(model, path.c_str());
        if (a == nullptr) {
            throw llama_failure("failed to load LoRA adapter '" + path + "'");
        }
        return to_handle(a);
    });
}

// Callers must first detach the adapter from every context (contexts keep raw pointers to it).
JNIEXPORT void JNICALL Java_dev_steer_llama_LoraAdapter_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { llama_adapter_lora_free(from_handle<llama_adapter_lora>(h, "adapter")); });
}

JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_LoraAdapter_nativeMeta(JNIEnv * env, jclass, jlong h, jbyteArray key_bytes) {
    return guarded(env, (jbyteArray) nullptr, [&]() -> jbyteArray {
        const auto * a = from_handle<llama_adapter_lora>(h, "adapter");
        const std::string key = to_string(env, key_bytes);
        char buf[512];
        const int n = llama_adapter_meta_val_str(a, key.c_str(), buf, sizeof buf);
        return n < 0 ? nullptr : to_bytes(env, std::string(buf, std::min((size_t) n, sizeof buf - 1)));
    });
}

}  // extern "C"
