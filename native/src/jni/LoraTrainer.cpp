// dev.steer.llama.LoraTrainer: the LoRA trainer (native/src/train) over a loaded model.
#include "model.h"
#include "trainer.h"

#include <cmath>
#include <memory>

using namespace steer;
using steer::train::example;
using steer::train::loss_weights;
using steer::train::reference;
using steer::train::trainer;

static trainer * trainer_of(jlong h) { return from_handle<trainer>(h, "trainer"); }

static example to_example(JNIEnv * env, jintArray context, jintArray chosen, jintArray rejected) {
    example e;
    e.context = to_ints(env, context);
    e.chosen = to_ints(env, chosen);
    if (rejected != nullptr) {
        e.rejected = to_ints(env, rejected);
    }
    return e;
}

static loss_weights to_weights(jfloat nll, jfloat dpo, jfloat beta) {
    if (!std::isfinite(nll) || !std::isfinite(dpo) || !std::isfinite(beta) || nll < 0 || dpo < 0 || beta <= 0) {
        throw bad_argument("loss weights must be finite, nll and dpo >= 0, beta > 0");
    }
    return loss_weights{nll, dpo, beta};
}

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LoraTrainer_nativeCreate(
        JNIEnv * env, jclass, jlong model_h, jobjectArray target_arr, jint rank, jfloat alpha, jint seed, jint threads) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        std::vector<std::string> targets;
        const jsize n = target_arr ? env->GetArrayLength(target_arr) : 0;
        for (jsize i = 0; i < n; i++) {
            auto b = (jbyteArray) env->GetObjectArrayElement(target_arr, i);
            targets.push_back(to_string(env, b));
            env->DeleteLocalRef(b);
        }
        try {
            return to_handle(new trainer(model, targets, rank, alpha, (uint32_t) seed, threads));
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { delete trainer_of(h); });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetCheckpointing(JNIEnv * env, jclass, jlong h, jboolean on) {
    guarded_void(env, [&] { trainer_of(h)->set_checkpointing(on == JNI_TRUE); });
}

JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeLogits(JNIEnv * env, jclass, jlong h, jintArray tokens, jboolean use_lora) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            std::vector<float> l = trainer_of(h)->logits(to_ints(env, tokens), use_lora);
            return to_jfloats(env, l.data(), l.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// [logp_chosen, logp_rejected] under the base model.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeReference(
        JNIEnv * env, jclass, jlong h, jintArray context, jintArray chosen, jintArray rejected) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            reference r = trainer_of(h)->reference_logps(to_example(env, context, chosen, rejected));
            float v[2] = {r.logp_chosen, r.logp_rejected};
            return to_jfloats(env, v, 2);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// [loss, logp_chosen, logp_rejected] with the adapter on.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeEvaluate(
        JNIEnv * env, jclass, jlong h, jintArray context, jintArray chosen, jintArray rejected,
        jfloat ref_c, jfloat ref_r, jfloat nll, jfloat dpo, jfloat beta) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            auto ev = trainer_of(h)->evaluate(to_example(env, context, chosen, rejected), to_weights(nll, dpo, beta), reference{ref_c, ref_r}, true);
            float v[3] = {ev.loss, ev.logp_chosen, ev.logp_rejected};
            return to_jfloats(env, v, 3);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeGradient(
        JNIEnv * env, jclass, jlong h, jintArray context, jintArray chosen, jintArray rejected,
        jfloat ref_c, jfloat ref_r, jfloat nll, jfloat dpo, jfloat beta, jbyteArray tensor) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            auto g = trainer_of(h)->gradient(to_example(env, context, chosen, rejected), to_weights(nll, dpo, beta),
                                             reference{ref_c, ref_r}, to_string(env, tensor));
            return to_jfloats(env, g.data(), g.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// One AdamW step over a batch; examples as parallel arrays. Returns the mean loss before the step.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeStep(
        JNIEnv * env, jclass, jlong h, jobjectArray contexts, jobjectArray chosens, jobjectArray rejecteds,
        jfloatArray refs, jfloat nll, jfloat dpo, jfloat beta, jfloat lr, jfloat wd, jfloat max_grad_norm) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        const jsize n = env->GetArrayLength(contexts);
        if (env->GetArrayLength(chosens) != n || env->GetArrayLength(rejecteds) != n || env->GetArrayLength(refs) != 2 * n) {
            throw bad_argument("one context, chosen, rejected and two reference log-probs per example");
        }
        std::vector<float> r((size_t) 2 * n);
        env->GetFloatArrayRegion(refs, 0, 2 * n, r.data());
        std::vector<example> batch;
        std::vector<reference> rs;
        for (jsize i = 0; i < n; i++) {
            auto c = (jintArray) env->GetObjectArrayElement(contexts, i);
            auto ch = (jintArray) env->GetObjectArrayElement(chosens, i);
            auto rj = (jintArray) env->GetObjectArrayElement(rejecteds, i);
            batch.push_back(to_example(env, c, ch, rj));
            env->DeleteLocalRef(c);
            env->DeleteLocalRef(ch);
            if (rj != nullptr) {
                env->DeleteLocalRef(rj);
            }
            rs.push_back(reference{r[2 * i], r[2 * i + 1]});
        }
        try {
            const auto r = trainer_of(h)->step(batch, rs, to_weights(nll, dpo, beta), lr, wd, max_grad_norm);
            const float out[2] = {r.loss, r.grad_norm};
            return to_jfloats(env, out, 2);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeGetTensor(JNIEnv * env, jclass, jlong h, jbyteArray name) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            ggml_tensor * t = trainer_of(h)->lora().param(to_string(env, name));
            std::vector<float> v(ggml_nelements(t));
            ggml_backend_tensor_get(t, v.data(), 0, v.size() * sizeof(float));
            return to_jfloats(env, v.data(), v.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetTensor(JNIEnv * env, jclass, jlong h, jbyteArray name, jfloatArray values) {
    guarded_void(env, [&] {
        ggml_tensor * t;
        try {
            t = trainer_of(h)->lora().param(to_string(env, name));
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
        if (values == nullptr || env->GetArrayLength(values) != ggml_nelements(t)) {
            throw bad_argument("values must have exactly the tensor's element count");
        }
        std::vector<float> v(ggml_nelements(t));
        env->GetFloatArrayRegion(values, 0, (jsize) v.size(), v.data());
        ggml_backend_tensor_set(t, v.data(), 0, v.size() * sizeof(float));
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSave(JNIEnv * env, jclass, jlong h, jbyteArray path) {
    guarded_void(env, [&] {
        trainer * t = trainer_of(h);
        t->lora().write_gguf(to_string(env, path), t->model().arch);
    });
}

}  // extern "C"
