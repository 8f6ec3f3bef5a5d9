// dev.steer.llama.NativeLibrary: process-wide setup of llama.cpp (backends, logging).
#include "jni_support.h"

#include "llama.h"
#include "ggml-backend.h"

#include <atomic>
#include <cstdio>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace steer { void remember_llama_error(const char * text); }

// Messages at or above this level go to stderr; errors are always remembered for exception messages.
static std::atomic<int> g_print_level{GGML_LOG_LEVEL_WARN};
static thread_local ggml_log_level g_last_level = GGML_LOG_LEVEL_NONE;

static void on_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_CONT) {
        level = g_last_level;  // a continuation keeps the level of the line it continues
    }
    g_last_level = level;
    if (level == GGML_LOG_LEVEL_ERROR) {
        steer::remember_llama_error(text);
    }
    if (level != GGML_LOG_LEVEL_NONE && level >= g_print_level.load()) {
        fputs(text, stderr);
    }
}

extern "C" {

JNIEXPORT void JNICALL Java_dev_steer_llama_NativeLibrary_nativeInit(JNIEnv * env, jclass) {
    steer::guarded_void(env, [&] {
        llama_log_set(on_log, nullptr);
        llama_backend_init();
#if defined(__GLIBC__)
        // glibc raises its mmap threshold to the size of each mmap'd block it frees (up to 32 MiB): after that, blocks
        // below it come from the heap, and freed they stay resident. A training job frees and allocates such blocks
        // (a graph's compute buffer outgrown by the next, labels, logits read back): ~25 MiB of its peak over serving
        // on SmolLM2 (bench/README.md). Setting the threshold fixes it at glibc's starting value, 128 KiB: larger
        // blocks are mmap'd and go back to the system when freed.
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    });
}

// Print threshold as a ggml_log_level: 1 = debug and up ... 4 = errors only; 6 = nothing.
JNIEXPORT void JNICALL Java_dev_steer_llama_NativeLibrary_nativeSetLogLevel(JNIEnv *, jclass, jint level) {
    g_print_level.store(level);
}

JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_NativeLibrary_nativeSystemInfo(JNIEnv * env, jclass) {
    return steer::guarded(env, (jbyteArray) nullptr, [&] {
        std::string info = std::string("llama.cpp ") + llama_version() + " | " + llama_print_system_info();
        return steer::to_bytes(env, info);
    });
}

JNIEXPORT jboolean JNICALL Java_dev_steer_llama_NativeLibrary_nativeSupportsGpuOffload(JNIEnv *, jclass) {
    return llama_supports_gpu_offload() ? JNI_TRUE : JNI_FALSE;
}

}  // extern "C"
