// dev.steer.llama.LlamaSampler: one sequence's token sampler: an optional GBNF grammar (lazy or not) in front of
// a llama.cpp sampler chain (penalties -> DRY -> top-k -> top-p -> min-p -> temperature -> seeded draw, or greedy:
// llama-server's order).
#include "context.h"

#include <algorithm>
#include <cmath>
#include <functional>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

using namespace steer;

namespace {

struct sampler_handle {
    const llama_model * model   = nullptr;
    llama_sampler *     grammar = nullptr;  // null: unconstrained
    llama_sampler *     chain   = nullptr;
    bool                greedy  = false;     // the chain is greedy alone: the argmax of the logits is its choice
    int32_t             top     = 0;         // > 0: greedy after penalties that only lower at most top - 1 tokens'
                                             // logits: only the logits at or above the top-th largest can be chosen
    std::vector<llama_token_data> cur;       // candidate buffer reused across steps
    std::vector<float>  top_heap;            // fill_top_candidates' heap, reused across steps
};

sampler_handle * sampler_of(jlong h) { return from_handle<sampler_handle>(h, "sampler"); }

void fill_candidates(sampler_handle * s, const float * logits, int32_t n_vocab, llama_token_data_array & arr) {
    s->cur.resize((size_t) n_vocab);
    for (int32_t i = 0; i < n_vocab; i++) {
        s->cur[i] = llama_token_data{ i, logits[i], 0.0f };
    }
    arr = llama_token_data_array{ s->cur.data(), s->cur.size(), -1, false };
}

// The candidates a greedy chain whose penalties only lower logits, and at most top - 1 tokens' (those in their window),
// can choose from: every token whose logit is at or above the top-th largest, in id order. Exact: of these, at least
// one is not penalized, and it is above every token left out, whose logits are lower and can only fall. The chain
// then runs on tens of candidates instead of the vocabulary (Gemma 3's 262k: DRY's pass over the candidates looks
// each one up in a hash map). The threshold in one pass, a min-heap of the top largest seen so far.
void fill_top_candidates(sampler_handle * s, const float * logits, int32_t n_vocab, int32_t top, llama_token_data_array & arr) {
    if (n_vocab <= 0 || std::isnan(logits[0])) {  // llama.cpp's greedy keeps a NaN first logit: the whole vocabulary then
        fill_candidates(s, logits, n_vocab, arr);
        return;
    }
    std::vector<float> & heap = s->top_heap;
    heap.clear();
    for (int32_t i = 0; i < n_vocab; i++) {
        const float x = logits[i];
        if ((int32_t) heap.size() < top) {
            if (x == x) {  // not NaN
                heap.push_back(x);
                std::push_heap(heap.begin(), heap.end(), std::greater<float>());
            }
        } else if (x > heap.front()) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
            heap.back() = x;
            std::push_heap(heap.begin(), heap.end(), std::greater<float>());
        }
    }
    s->cur.clear();
    if ((int32_t) heap.size() < top) {  // fewer numbers than top: every token is a candidate, as without the cut
        fill_candidates(s, logits, n_vocab, arr);
        return;
    }
    const float threshold = heap.front();
    for (int32_t i = 0; i < n_vocab; i++) {
        if (logits[i] >= threshold) {
            s->cur.push_back(llama_token_data{ i, logits[i], 0.0f });
        }
    }
    arr = llama_token_data_array{ s->cur.data(), s->cur.size(), -1, false };
}

bool grammar_allows(llama_sampler * grammar, llama_token token) {
    llama_token_data one{ token, 0.0f, 0.0f };
    llama_token_data_array arr{ &one, 1, -1, false };
    llama_sampler_apply(grammar, &arr);
    return std::isfinite(arr.data[0].logit);
}

// What llama.cpp's greedy sampler selects (the first of the largest logits), read straight from the logits: the
// candidate array it would scan is 3 MB to write per token on a 262k vocabulary (perf, Gemma 3 at 8 streams: 3.7%
// of all samples went to filling and scanning it). In two passes: the largest value, kept in eight running maxima
// (two SSE registers on x86; one index-tracking scan was still 3% of Gemma 3's 8 streams on an Intel Xeon), then
// the first index holding it. The same token as the one scan, NaNs included: a NaN is never larger, and a NaN first
// logit stays the choice there.
llama_token argmax(const float * logits, int32_t n_vocab) {
    if (n_vocab <= 0 || std::isnan(logits[0])) {
        return 0;
    }
    constexpr int W = 8;
    float m[W];
    int32_t i = 0;
#if defined(__SSE__)
    // maxps(x, m) is x > m ? x : m lane by lane: a NaN x leaves m as it was (x86-64's baseline, so every build has it)
    __m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0;
    for (; i + W <= n_vocab; i += W) {
        m0 = _mm_max_ps(_mm_loadu_ps(logits + i), m0);
        m1 = _mm_max_ps(_mm_loadu_ps(logits + i + 4), m1);
    }
    _mm_storeu_ps(m, m0);
    _mm_storeu_ps(m + 4, m1);
#else
    for (float & x : m) x = -INFINITY;
    for (; i + W <= n_vocab; i += W) {
        for (int j = 0; j < W; j++) m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];
    }
#endif
    float best = m[0];
    for (int j = 1; j < W; j++) best = m[j] > best ? m[j] : best;
    for (; i < n_vocab; i++) best = logits[i] > best ? logits[i] : best;
    for (int32_t k = 0; k < n_vocab; k++) {
        if (logits[k] == best) return k;
    }
    return 0;  // not reached: logits[0] is a number, so some index holds the largest
}

// llama.cpp prepares DRY's sequence breakers by reading every token of the vocabulary (llama_sampler_init_dry: ~15 ms
// for one breaker on Gemma 3's 262k tokens, ~0.3 s for a 40-byte breaker that many tokens end a prefix of), and a
// sampler is made for every answer, on the decode thread. So a prepared DRY sampler is kept per model and settings
// (the 32 latest) and each answer gets a clone of it (its processed breakers copied, the vocabulary not read again).
struct dry_prototypes {
    std::mutex mutex;
    std::deque<std::pair<std::string, llama_sampler *>> kept;  // oldest first; the key starts with the model's address
};

dry_prototypes & dry_kept() {
    static dry_prototypes kept;
    return kept;
}

constexpr size_t DRY_KEPT = 32;

template <typename T> void append_bytes(std::string & key, const T & v) {
    key.append(reinterpret_cast<const char *>(&v), sizeof v);
}

llama_sampler * dry_sampler(const llama_model * model, float multiplier, float base, int32_t allowed, int32_t last_n,
                            const std::vector<std::string> & breakers) {
    std::string key;
    append_bytes(key, model);
    append_bytes(key, multiplier);
    append_bytes(key, base);
    append_bytes(key, allowed);
    append_bytes(key, last_n);
    for (const auto & b : breakers) {
        key.append(b);
        key.push_back('\0');  // a breaker holds no NUL (checked in Java)
    }
    auto & k = dry_kept();
    {
        std::lock_guard<std::mutex> lock(k.mutex);
        for (auto & [name, prototype] : k.kept) {
            if (name == key) return llama_sampler_clone(prototype);
        }
    }
    std::vector<const char *> ptrs;
    for (const auto & b : breakers) ptrs.push_back(b.c_str());
    llama_sampler * prototype = llama_sampler_init_dry(llama_model_get_vocab(model), multiplier, base, allowed, last_n,
                                                       ptrs.data(), ptrs.size());  // outside the lock: the slow part
    llama_sampler * copy = llama_sampler_clone(prototype);
    std::lock_guard<std::mutex> lock(k.mutex);
    k.kept.emplace_back(std::move(key), prototype);
    if (k.kept.size() > DRY_KEPT) {
        llama_sampler_free(k.kept.front().second);
        k.kept.pop_front();
    }
    return copy;
}

llama_token selected(const llama_token_data_array & arr) {
    if (arr.selected < 0 || (size_t) arr.selected >= arr.size) {
        throw llama_error("sampler selected no token");
    }
    return arr.data[arr.selected].id;
}

}  // namespace

void steer::forget_model_samplers(const llama_model * model) {
    std::string prefix;
    append_bytes(prefix, model);
    auto & k = dry_kept();
    std::lock_guard<std::mutex> lock(k.mutex);
    for (auto it = k.kept.begin(); it != k.kept.end();) {
        if (it->first.compare(0, prefix.size(), prefix) == 0) {
            llama_sampler_free(it->second);
            it = k.kept.erase(it);
        } else {
            ++it;
        }
    }
}

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_steer_llama_LlamaSampler_nativeCreate(
        JNIEnv * env, jclass, jlong model_h, jfloat temperature, jint top_k, jfloat top_p, jfloat min_p,
        jint penalty_last_n, jfloat repeat_penalty, jfloat frequency_penalty, jfloat presence_penalty,
        jfloat dry_multiplier, jfloat dry_base, jint dry_allowed_length, jint dry_penalty_last_n, jobjectArray dry_breakers,
        jlong seed, jbyteArray grammar_bytes, jobjectArray lazy_patterns, jintArray lazy_tokens) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        const llama_vocab * vocab = llama_model_get_vocab(model);
        if (!std::isfinite(temperature) || temperature < 0) throw bad_argument("temperature must be a finite number >= 0");
        if (top_k < 0) throw bad_argument("top_k must be >= 0");
        if (!(top_p > 0 && top_p <= 1)) throw bad_argument("top_p must be in (0, 1]");
        if (!(min_p >= 0 && min_p <= 1)) throw bad_argument("min_p must be in [0, 1]");
        if (penalty_last_n < -1) throw bad_argument("penalty_last_n must be >= -1");
        if (!std::isfinite(repeat_penalty) || repeat_penalty <= 0) throw bad_argument("repeat penalty must be > 0");
        if (!std::isfinite(frequency_penalty) || !std::isfinite(presence_penalty)) throw bad_argument("penalties must be finite");
        if (!std::isfinite(dry_multiplier) || dry_multiplier < 0) throw bad_argument("dry_multiplier must be a finite number >= 0");
        if (!std::isfinite(dry_base) || dry_base < 1) throw bad_argument("dry_base must be a finite number >= 1");
        if (dry_allowed_length < 0) throw bad_argument("dry_allowed_length must be >= 0");
        if (dry_penalty_last_n < 0) throw bad_argument("dry_penalty_last_n must be >= 0");

        auto s = std::make_unique<sampler_handle>();
        s->model = model;
        if (grammar_bytes != nullptr) {
            const std::string gbnf = to_string(env, grammar_bytes);
            if (lazy_patterns == nullptr && lazy_tokens == nullptr) {
                s->grammar = llama_sampler_init_grammar(vocab, gbnf.c_str(), "root");
            } else {
                const std::vector<std::string> patterns = to_strings(env, lazy_patterns);
                std::vector<const char *> pattern_ptrs;
                for (auto & p : patterns) pattern_ptrs.push_back(p.c_str());
                std::vector<int32_t> tokens = lazy_tokens ? to_ints(env, lazy_tokens) : std::vector<int32_t>{};
                for (int32_t t : tokens) check_token(vocab, t);
                s->grammar = llama_sampler_init_grammar_lazy_patterns(vocab, gbnf.c_str(), "root",
                        pattern_ptrs.data(), pattern_ptrs.size(), tokens.data(), tokens.size());
            }
            if (s->grammar == nullptr) {
                throw bad_argument(llama_failure("invalid grammar").what());
            }
        }
        s->chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        const bool penalties = repeat_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f;
        const bool dry = dry_multiplier > 0.0f && dry_penalty_last_n != 0;
        // DRY keeps a ring buffer of this many tokens: a request's number is bounded by the model's training context,
        // which no sequence it serves well is longer than
        const int32_t dry_window = dry ? std::min(dry_penalty_last_n, std::max(llama_model_n_ctx_train(model), 1)) : 0;
        s->greedy = temperature <= 0.0f && !penalties && !dry;
        // Greedy after penalties that only lower logits (repeat >= 1, frequency and presence >= 0, DRY), over windows
        // of known length: at most that many tokens are penalized, so the top window + 1 logits hold the choice.
        const bool lower_only = repeat_penalty >= 1.0f && frequency_penalty >= 0.0f && presence_penalty >= 0.0f;
        if (temperature <= 0.0f && !s->greedy && lower_only && (!penalties || penalty_last_n >= 0)) {
            const int64_t window = std::max<int64_t>(penalties ? penalty_last_n : 0, dry_window);
            s->top = window + 1 <= 4096 ? (int32_t) window + 1 : 0;
        }
        if (penalties) {
            llama_sampler_chain_add(s->chain, llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), penalty_last_n,
                                                                           repeat_penalty, frequency_penalty, presence_penalty));
        }
        if (dry) {
            llama_sampler_chain_add(s->chain, dry_sampler(model, dry_multiplier, dry_base, dry_allowed_length, dry_window,
                                                          to_strings(env, dry_breakers)));
        }
        if (temperature <= 0.0f) {
            llama_sampler_chain_add(s->chain, llama_sampler_init_greedy());
        } else {
            if (top_k > 0)    llama_sampler_chain_add(s->chain, llama_sampler_init_top_k(top_k));
            if (top_p < 1.0f) llama_sampler_chain_add(s->chain, llama_sampler_init_top_p(top_p, 1));
            if (min_p > 0.0f) llama_sampler_chain_add(s->chain, llama_sampler_init_min_p(min_p, 1));
            llama_sampler_chain_add(s->chain, llama_sampler_init_temp(temperature));
            llama_sampler_chain_add(s->chain, llama_sampler_init_dist(seed < 0 ? LLAMA_DEFAULT_SEED : (uint32_t) seed));
        }
        return to_handle(s.release());
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaSampler_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] {
        sampler_handle * s = sampler_of(h);
        if (s->grammar) llama_sampler_free(s->grammar);
        llama_sampler_free(s->chain);
        delete s;
    });
}

// An independent copy, state included (grammar position, penalty history, random state).
JNIEXPORT jlong JNICALL Java_dev_steer_llama_LlamaSampler_nativeClone(JNIEnv * env, jclass, jlong h) {
    return guarded(env, (jlong) 0, [&] {
        const sampler_handle * s = sampler_of(h);
        auto copy = std::make_unique<sampler_handle>();
        copy->model   = s->model;
        copy->grammar = s->grammar ? llama_sampler_clone(s->grammar) : nullptr;
        copy->chain   = llama_sampler_clone(s->chain);
        copy->greedy  = s->greedy;
        copy->top     = s->top;
        return to_handle(copy.release());
    });
}

// Sample a token from the logits at batch index idx of the context's last decode, and accept it.
// With a grammar we first sample without it and keep the token if the grammar allows it; only otherwise do we
// mask the whole vocabulary. That is llama.cpp's own trick: on a 262k vocabulary the full mask is the slow part.
JNIEXPORT jint JNICALL Java_dev_steer_llama_LlamaSampler_nativeSample(JNIEnv * env, jclass, jlong h, jlong ctx_h, jint idx) {
    return guarded(env, (jint) -1, [&] {
        sampler_handle * s = sampler_of(h);
        context_handle * c = context_of(ctx_h);
        if (c->model != s->model) {
            throw bad_argument("sampler and context belong to different models");
        }
        const float * logits = llama_get_logits_ith(c->ctx, idx);
        if (logits == nullptr) {
            throw bad_argument("no logits at batch index " + std::to_string(idx));
        }
        const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(s->model));
        llama_token_data_array arr;
        llama_token token;
        if (s->greedy) {
            token = argmax(logits, n_vocab);
        } else if (s->top > 0) {
            fill_top_candidates(s, logits, n_vocab, s->top, arr);
            llama_sampler_apply(s->chain, &arr);
            token = selected(arr);
        } else {
            fill_candidates(s, logits, n_vocab, arr);
            llama_sampler_apply(s->chain, &arr);
            token = selected(arr);
        }
        if (s->grammar && !grammar_allows(s->grammar, token)) {
            fill_candidates(s, logits, n_vocab, arr);
            llama_sampler_apply(s->grammar, &arr);
            bool any = false;
            for (size_t i = 0; i < arr.size && !any; i++) any = std::isfinite(arr.data[i].logit);
            if (!any) {
                throw llama_error("the grammar allows no token here");
            }
            llama_sampler_apply(s->chain, &arr);
            token = selected(arr);
        }
        if (s->grammar) llama_sampler_accept(s->grammar, token);
        llama_sampler_accept(s->chain, token);
        return (jint) token;
    });
}

// Would the grammar accept this token next? (Always true without a grammar.)
JNIEXPORT jboolean JNICALL Java_dev_steer_llama_LlamaSampler_nativeCanAccept(JNIEnv * env, jclass, jlong h, jint token) {
    return guarded(env, (jboolean) JNI_FALSE, [&] {
        sampler_handle * s = sampler_of(h);
        check_token(llama_model_get_vocab(s->model), token);
        return (!s->grammar || grammar_allows(s->grammar, token)) ? JNI_TRUE : JNI_FALSE;
    });
}

// Advance the sampler's state over a token chosen elsewhere (a prompt or a human correction).
JNIEXPORT void JNICALL Java_dev_steer_llama_LlamaSampler_nativeAccept(JNIEnv * env, jclass, jlong h, jint token) {
    guarded_void(env, [&] {
        sampler_handle * s = sampler_of(h);
        check_token(llama_model_get_vocab(s->model), token);
        if (s->grammar) {
            if (!grammar_allows(s->grammar, token)) {
                throw bad_argument("token " + std::to_string(token) + " is not allowed by the grammar here");
            }
            llama_sampler_accept(s->grammar, token);
        }
        llama_sampler_accept(s->chain, token);
    });
}

}  // extern "C"
