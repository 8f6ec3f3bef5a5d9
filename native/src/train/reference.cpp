// The base model's side of the loss (adapter off), computed once per example: the span log-probabilities the
// preference term compares against, and per keep row the distribution the KL term keeps the adapter at.
#include "trainer_graph.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace steer::train {

// The base model's log-probabilities of the spans, and on each keep row its top-K next tokens (renormalized).
reference trainer::reference_logps(const example & e) {
    auto g = loss_graph(e, loss_weights{}, false, false, 1.0f, true);
    allocate(g->gf, "reference");
    set_inputs(*g, reference{}, loss_weights{});
    compute(g->gf, "reference");
    reference r;
    r.logp_chosen = g->logp_c ? scalar(g->logp_c) : 0.0f;
    r.logp_rejected = g->logp_r ? scalar(g->logp_r) : 0.0f;
    const size_t n = g->p.keep_rows.size(), V = model_.n_vocab, K = std::min<size_t>(REFERENCE_TOP_K, V);
    if (n > 0) {
        std::vector<float> logits(n * V);
        ggml_backend_tensor_get(g->keep_logits, logits.data(), 0, logits.size() * sizeof(float));
        ggml_backend_sched_reset(sched_);
        r.keep_ids.assign(n * REFERENCE_TOP_K, 0);
        r.keep_probs.assign(n * REFERENCE_TOP_K, 0.0f);
        std::vector<int32_t> order(V);
        double entropy = 0;
        for (size_t i = 0; i < n; i++) {
            const float * row = logits.data() + i * V;
            for (size_t v = 0; v < V; v++) {
                order[v] = (int32_t) v;
            }
            std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
            double z = 0;  // the softmax over the whole vocabulary
            for (size_t v = 0; v < V; v++) {
                z += std::exp((double) row[v] - row[order[0]]);
            }
            double mass = 0;
            for (size_t k = 0; k < K; k++) {
                const double q = std::exp((double) row[order[k]] - row[order[0]]) / z;
                r.keep_ids[i * REFERENCE_TOP_K + k] = order[k];
                r.keep_probs[i * REFERENCE_TOP_K + k] = (float) q;
                entropy -= q > 0 ? q * std::log(q) : 0.0;
                mass += q;
            }
            if (K < V) {  // the even spread of the rest over the other V - K tokens
                const double rest = std::max(0.0, 1.0 - mass), u = rest / (double) (V - K);
                entropy -= u > 0 ? rest * std::log(u) : 0.0;
            }
        }
        r.keep_entropy = (float) (entropy / n);
    }
    return r;
}

}  // namespace steer::train
