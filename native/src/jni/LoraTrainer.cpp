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

static example to_example(JNIEnv * env, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected) {
    example e;
    e.tokens = to_ints(env, tokens);
    if (roles == nullptr || env->GetArrayLength(roles) != (jsize) e.tokens.size()) {
        throw bad_argument("an example needs one role per token");
    }
    e.roles.resize(e.tokens.size());
    env->GetByteArrayRegion(roles, 0, (jsize) e.roles.size(), reinterpret_cast<jbyte *>(e.roles.data()));
    e.fork = fork;
    if (rejected != nullptr) {
        e.rejected = to_ints(env, rejected);
    }
    return e;
}

static reference to_reference(JNIEnv * env, jfloat ref_c, jfloat ref_r, jintArray keep_ids, jfloatArray keep_probs, jfloat keep_entropy,
                              jintArray guard) {
    reference r{ref_c, ref_r, {}, {}, keep_entropy, {}};
    if (guard != nullptr) {
        r.guard = to_ints(env, guard);
    }
    if (keep_ids != nullptr) {
        r.keep_ids = to_ints(env, keep_ids);
    }
    if (keep_probs != nullptr) {
        r.keep_probs.resize(env->GetArrayLength(keep_probs));
        env->GetFloatArrayRegion(keep_probs, 0, (jsize) r.keep_probs.size(), r.keep_probs.data());
    }
    if (r.keep_ids.size() != r.keep_probs.size() || !std::isfinite(keep_entropy)) {
        throw bad_argument("a reference needs as many keep ids as keep probabilities, and a finite entropy");
    }
    return r;
}

// The loss weights as Java's LoraTrainer.Weights sends them: [nll, dpo, beta, kl, unlikelihood, guard, first].
static loss_weights to_weights(JNIEnv * env, jfloatArray weights) {
    constexpr jsize N = 7;
    if (weights == nullptr || env->GetArrayLength(weights) != N) {
        throw bad_argument("loss weights are [nll, dpo, beta, kl, unlikelihood, guard, first]");
    }
    float v[N];
    env->GetFloatArrayRegion(weights, 0, N, v);
    const loss_weights w{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    bool ok = w.beta > 0;
    for (float x : v) {
        ok = ok && std::isfinite(x) && x >= 0;
    }
    if (!ok) {
        throw bad_argument("loss weights must be finite and >= 0, beta > 0");
    }
    return w;
}

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LoraTrainer_nativeCreate(
        JNIEnv * env, jclass, jlong model_h, jobjectArray target_arr, jint rank, jfloat alpha, jint layers, jint seed, jint threads) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        const std::vector<std::string> targets = to_strings(env, target_arr);
        try {
            return to_handle(new trainer(model, targets, rank, alpha, layers, (uint32_t) seed, threads));
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { delete trainer_of(h); });
}

// The trainer's graph memory so far (the largest graph it allocated), for tests and benchmarks.
JNIEXPORT jlong JNICALL Java_dev_steer_llama_LoraTrainer_nativeComputeBufferBytes(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jlong) 0, [&] { return (jlong) trainer_of(h)->compute_buffer_bytes(); });
}

// segments: 0 off, -1 every block, N >= 2 that many runs of blocks (trainer.h).
JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetCheckpointing(JNIEnv * env, jclass, jlong h, jint segments) {
    guarded_void(env, [&] {
        if (segments == steer::train::trainer::EVERY_BLOCK) {
            trainer_of(h)->set_checkpointing(true);
        } else {
            trainer_of(h)->set_checkpoint_segments(segments);
        }
    });
}

// level: 0 nothing, 1 the elementwise activations, 2 also the attention's (trainer.h, recompute), in the lowest
// attentionBlocks blocks of a graph (-1: every block).
JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetRecompute(JNIEnv * env, jclass, jlong h, jint level, jint attentionBlocks) {
    guarded_void(env, [&] {
        if (level < 0 || level > 2) {
            throw bad_argument("recompute level must be 0, 1 or 2");
        }
        if (attentionBlocks < steer::train::ALL_BLOCKS) {
            throw bad_argument("attention blocks must be -1 (every block) or >= 0");
        }
        trainer_of(h)->set_recompute((steer::train::recompute) level, attentionBlocks);
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetKeptIn16Bits(JNIEnv * env, jclass, jlong h, jboolean on) {
    guarded_void(env, [&] { trainer_of(h)->set_kept_in_16_bits(on); });
}

// cell: a direct buffer of at least 4 bytes that the Java object keeps alive as long as the trainer.
JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeSetThreadCell(JNIEnv * env, jclass, jlong h, jobject cell) {
    guarded_void(env, [&] {
        void * p = env->GetDirectBufferAddress(cell);
        if (p == nullptr || env->GetDirectBufferCapacity(cell) < 4) {
            throw bad_argument("the thread cell must be a direct buffer of 4 bytes or more");
        }
        trainer_of(h)->set_thread_cell(static_cast<const int32_t *>(p));
    });
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

// Under the base model: [logp_chosen, logp_rejected, keep_entropy, keep_probs (rows * K)..., keep_ids (rows * K, as
// floats: token ids are exact in a float below 2^24)...].
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeReference(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            reference r = trainer_of(h)->reference_logps(to_example(env, tokens, roles, fork, rejected));
            std::vector<float> v = {r.logp_chosen, r.logp_rejected, r.keep_entropy};
            v.insert(v.end(), r.keep_probs.begin(), r.keep_probs.end());
            for (int32_t id : r.keep_ids) {
                v.push_back((float) id);
            }
            return to_jfloats(env, v.data(), v.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// The first adapted block's input for the example's reference packing, [T * n_embd] (empty: every block adapted).
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeKeptInput(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            std::vector<float> x = trainer_of(h)->kept_input_of(to_example(env, tokens, roles, fork, rejected));
            return to_jfloats(env, x.data(), x.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeKeepInput(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected, jfloatArray input) {
    guarded_void(env, [&] {
        if (input == nullptr) {
            throw bad_argument("no kept input given");
        }
        std::vector<float> x(env->GetArrayLength(input));
        env->GetFloatArrayRegion(input, 0, (jsize) x.size(), x.data());
        try {
            trainer_of(h)->keep_input(to_example(env, tokens, roles, fork, rejected), std::move(x));
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT jint JNICALL Java_dev_steer_llama_LoraTrainer_nativeLowerPasses(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jint) 0, [&] { return (jint) trainer_of(h)->lower_passes(); });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeForgetKeptInputs(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { trainer_of(h)->forget_kept_inputs(); });
}

// The first block that carries LoRA (0: every block).
JNIEXPORT jint JNICALL Java_dev_steer_llama_LoraTrainer_nativeFirstAdapted(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jint) 0, [&] { return (jint) trainer_of(h)->lora().first_layer(); });
}

// [loss, logp_chosen, logp_rejected, kl] with the adapter on.
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeEvaluate(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected,
        jfloat ref_c, jfloat ref_r, jintArray keep_ids, jfloatArray keep_probs, jfloat keep_entropy, jintArray guard,
        jfloatArray weights) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            auto ev = trainer_of(h)->evaluate(to_example(env, tokens, roles, fork, rejected), to_weights(env, weights),
                                              to_reference(env, ref_c, ref_r, keep_ids, keep_probs, keep_entropy, guard), true);
            float v[4] = {ev.loss, ev.logp_chosen, ev.logp_rejected, ev.kl};
            return to_jfloats(env, v, 4);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// [learn rows, their argmax..., the keep rows' argmax...] with or without the adapter.
JNIEXPORT jintArray JNICALL Java_dev_steer_llama_LoraTrainer_nativePredict(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected, jboolean use_lora) {
    return guarded(env, (jintArray) nullptr, [&] {
        try {
            steer::train::predictions p = trainer_of(h)->predict(to_example(env, tokens, roles, fork, rejected), use_lora == JNI_TRUE);
            std::vector<int32_t> v = {(int32_t) p.learn.size()};
            v.insert(v.end(), p.learn.begin(), p.learn.end());
            v.insert(v.end(), p.keep.begin(), p.keep.end());
            return to_jints(env, v);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeSnapshot(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        std::vector<float> v = trainer_of(h)->snapshot();
        return to_jfloats(env, v.data(), v.size());
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LoraTrainer_nativeRestore(JNIEnv * env, jclass, jlong h, jfloatArray values) {
    guarded_void(env, [&] {
        if (values == nullptr) {
            throw bad_argument("a snapshot is needed");
        }
        std::vector<float> v(env->GetArrayLength(values));
        env->GetFloatArrayRegion(values, 0, (jsize) v.size(), v.data());
        try {
            trainer_of(h)->restore(v);
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeGradient(
        JNIEnv * env, jclass, jlong h, jintArray tokens, jbyteArray roles, jint fork, jintArray rejected,
        jfloat ref_c, jfloat ref_r, jintArray keep_ids, jfloatArray keep_probs, jfloat keep_entropy, jintArray guard,
        jfloatArray weights, jbyteArray tensor) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        try {
            auto g = trainer_of(h)->gradient(to_example(env, tokens, roles, fork, rejected), to_weights(env, weights),
                                             to_reference(env, ref_c, ref_r, keep_ids, keep_probs, keep_entropy, guard), to_string(env, tensor));
            return to_jfloats(env, g.data(), g.size());
        } catch (const std::invalid_argument & e) {
            throw bad_argument(e.what());
        }
    });
}

// One AdamW step over a batch; examples and references as parallel arrays. Returns [mean loss, gradient norm].
JNIEXPORT jfloatArray JNICALL Java_dev_steer_llama_LoraTrainer_nativeStep(
        JNIEnv * env, jclass, jlong h, jobjectArray tokens, jobjectArray roles, jintArray forks, jobjectArray rejecteds,
        jfloatArray refs, jobjectArray keep_ids, jobjectArray keep_probs, jfloatArray keep_entropy, jobjectArray guards,
        jfloatArray weights, jfloat lr, jfloat wd, jfloat max_grad_norm, jfloat adam_eps) {
    return guarded(env, (jfloatArray) nullptr, [&] {
        const jsize n = env->GetArrayLength(tokens);
        if (env->GetArrayLength(roles) != n || env->GetArrayLength(forks) != n || env->GetArrayLength(rejecteds) != n
            || env->GetArrayLength(refs) != 2 * n || env->GetArrayLength(keep_ids) != n || env->GetArrayLength(keep_probs) != n
            || env->GetArrayLength(keep_entropy) != n || env->GetArrayLength(guards) != n) {
            throw bad_argument("one example (tokens, roles, fork, rejected) and one reference per batch entry");
        }
        std::vector<float> r((size_t) 2 * n), ent(n);
        std::vector<jint> fk(n);
        env->GetFloatArrayRegion(refs, 0, 2 * n, r.data());
        env->GetFloatArrayRegion(keep_entropy, 0, n, ent.data());
        env->GetIntArrayRegion(forks, 0, n, fk.data());
        std::vector<example> batch;
        std::vector<reference> rs;
        for (jsize i = 0; i < n; i++) {
            auto t = (jintArray) env->GetObjectArrayElement(tokens, i);
            auto ro = (jbyteArray) env->GetObjectArrayElement(roles, i);
            auto rj = (jintArray) env->GetObjectArrayElement(rejecteds, i);
            auto ki = (jintArray) env->GetObjectArrayElement(keep_ids, i);
            auto kp = (jfloatArray) env->GetObjectArrayElement(keep_probs, i);
            auto gd = (jintArray) env->GetObjectArrayElement(guards, i);
            batch.push_back(to_example(env, t, ro, fk[i], rj));
            rs.push_back(to_reference(env, r[2 * i], r[2 * i + 1], ki, kp, ent[i], gd));
            for (jobject o : {(jobject) t, (jobject) ro, (jobject) rj, (jobject) ki, (jobject) kp, (jobject) gd}) {
                if (o != nullptr) {
                    env->DeleteLocalRef(o);
                }
            }
        }
        try {
            const auto res = trainer_of(h)->step(batch, rs, to_weights(env, weights), lr, wd, max_grad_norm, adam_eps);
            const float out[2] = {res.loss, res.grad_norm};
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
