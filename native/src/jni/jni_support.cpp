#include "jni_support.h"

#include "llama.h"

namespace steer {

static thread_local std::string g_last_error;

std::string take_last_llama_error() {
    std::string e;
    e.swap(g_last_error);
    for (char & c : e) {
        if (c == '\n') {
            c = ';';
        }
    }
    while (!e.empty() && (e.back() == ';' || e.back() == ' ')) {
        e.pop_back();
    }
    return e;
}

// Called from NativeLibrary.cpp's log callback for every error-level message.
void remember_llama_error(const char * text) {
    if (text == nullptr) {
        return;
    }
    // Keep every error line of the current call (llama.cpp often logs the cause, then a generic "failed").
    g_last_error += text;
    if (g_last_error.size() > 4096) {
        g_last_error.erase(0, g_last_error.size() - 4096);
    }
}

llama_error llama_failure(const std::string & what) {
    std::string why = take_last_llama_error();
    return llama_error(why.empty() ? what : what + ": " + why);
}

void throw_java(JNIEnv * env, const char * cls, const std::string & msg) {
    if (env->ExceptionCheck()) {
        return;  // keep the first exception
    }
    jclass c = env->FindClass(cls);
    if (c == nullptr) {
        return;  // FindClass left NoClassDefFoundError pending
    }
    env->ThrowNew(c, msg.c_str());
}

void check_pending(JNIEnv * env) {
    if (env->ExceptionCheck()) {
        throw java_pending();
    }
}

std::string to_string(JNIEnv * env, jbyteArray bytes) {
    if (bytes == nullptr) {
        throw bad_argument("text is null");
    }
    const jsize n = env->GetArrayLength(bytes);
    std::string s((size_t) n, '\0');
    env->GetByteArrayRegion(bytes, 0, n, reinterpret_cast<jbyte *>(s.data()));
    check_pending(env);
    return s;
}

std::vector<std::string> to_strings(JNIEnv * env, jobjectArray arrays) {
    std::vector<std::string> out;
    const jsize n = arrays ? env->GetArrayLength(arrays) : 0;
    for (jsize i = 0; i < n; i++) {
        auto b = (jbyteArray) env->GetObjectArrayElement(arrays, i);
        out.push_back(to_string(env, b));
        env->DeleteLocalRef(b);
    }
    return out;
}

jbyteArray to_bytes(JNIEnv * env, const std::string & s) {
    jbyteArray arr = env->NewByteArray((jsize) s.size());
    check_pending(env);
    env->SetByteArrayRegion(arr, 0, (jsize) s.size(), reinterpret_cast<const jbyte *>(s.data()));
    return arr;
}

std::vector<int32_t> to_ints(JNIEnv * env, jintArray arr) {
    if (arr == nullptr) {
        throw bad_argument("array is null");
    }
    const jsize n = env->GetArrayLength(arr);
    std::vector<int32_t> v((size_t) n);
    env->GetIntArrayRegion(arr, 0, n, reinterpret_cast<jint *>(v.data()));
    check_pending(env);
    return v;
}

jintArray to_jints(JNIEnv * env, const std::vector<int32_t> & v) {
    jintArray arr = env->NewIntArray((jsize) v.size());
    check_pending(env);
    env->SetIntArrayRegion(arr, 0, (jsize) v.size(), reinterpret_cast<const jint *>(v.data()));
    return arr;
}

jfloatArray to_jfloats(JNIEnv * env, const float * data, size_t n) {
    jfloatArray arr = env->NewFloatArray((jsize) n);
    check_pending(env);
    env->SetFloatArrayRegion(arr, 0, (jsize) n, data);
    return arr;
}

}  // namespace steer
