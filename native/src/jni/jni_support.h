// What every JNI entry point shares: errors that become Java exceptions, byte[] <-> std::string, handles,
// and the last llama.cpp error message (so an exception can say *why* llama.cpp refused something).
//
// Rule for every entry point: all work happens inside guarded(), which turns C++ exceptions into Java
// exceptions. Inputs are validated here, before llama.cpp sees them, because a failed GGML_ASSERT in llama.cpp
// aborts the whole JVM and cannot be caught.
#pragma once

#include <jni.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace steer {

// Thrown inside entry points; guarded() maps each kind to a Java exception class.
struct bad_argument : std::runtime_error { using std::runtime_error::runtime_error; };  // IllegalArgumentException
struct bad_state    : std::runtime_error { using std::runtime_error::runtime_error; };  // IllegalStateException
struct llama_error  : std::runtime_error { using std::runtime_error::runtime_error; };  // dev.steer.llama.LlamaException

// The error-level lines llama.cpp/ggml logged on this thread during the current call, then cleared ("" when there was none).
std::string take_last_llama_error();
// A llama_error carrying `what`, plus llama.cpp's own reason when it logged one.
llama_error llama_failure(const std::string & what);

void throw_java(JNIEnv * env, const char * cls, const std::string & msg);

template <typename R, typename F>
R guarded(JNIEnv * env, R fallback, F && body) {
    take_last_llama_error();  // start each call with no stale message
    try {
        return body();
    } catch (const bad_argument & e) {
        throw_java(env, "java/lang/IllegalArgumentException", e.what());
    } catch (const bad_state & e) {
        throw_java(env, "java/lang/IllegalStateException", e.what());
    } catch (const std::bad_alloc &) {
        throw_java(env, "java/lang/OutOfMemoryError", "native allocation failed");
    } catch (const std::exception & e) {
        throw_java(env, "dev/steer/llama/LlamaException", e.what());
    } catch (...) {
        throw_java(env, "dev/steer/llama/LlamaException", "unknown native error");
    }
    return fallback;
}

template <typename F>
void guarded_void(JNIEnv * env, F && body) {
    guarded(env, 0, [&] { body(); return 0; });
}

// Java passes text as UTF-8 byte[] (JNI's own string functions speak "modified UTF-8", which mangles emoji).
std::string to_string(JNIEnv * env, jbyteArray bytes);
// Java byte[][] (UTF-8 strings) -> strings; null -> none.
std::vector<std::string> to_strings(JNIEnv * env, jobjectArray arrays);
jbyteArray to_bytes(JNIEnv * env, const std::string & s);
std::vector<int32_t> to_ints(JNIEnv * env, jintArray arr);
jintArray to_jints(JNIEnv * env, const std::vector<int32_t> & v);
jfloatArray to_jfloats(JNIEnv * env, const float * data, size_t n);

// A handle is a native pointer held by a Java object; 0 means closed.
template <typename T>
T * from_handle(jlong h, const char * what) {
    if (h == 0) {
        throw bad_state(std::string(what) + " is closed");
    }
    return reinterpret_cast<T *>(h);
}
template <typename T>
jlong to_handle(T * p) { return reinterpret_cast<jlong>(p); }

// Any Java exception already pending (e.g. from a JNI array call) aborts the entry point quietly.
struct java_pending : std::exception {};
void check_pending(JNIEnv * env);

}  // namespace steer
