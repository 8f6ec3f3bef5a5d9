// The loss head of one example's graph: from the final hidden states to each term of the loss (trainer.h says
// which), only on the rows a term reads, plus the outputs predict and reference_logps take from it.
#include "trainer_graph.h"

namespace steer::train {

void trainer::head(graph & g, ggml_tensor * hidden, const loss_weights & w, float loss_scale, bool keep_logits, bool argmax) {
    ggml_context * ctx = g.ctx;
    const packing & p = g.p;
    const bool with_kl = w.kl > 0 && !p.keep_rows.empty();
    const bool with_guard = w.guard > 0 && !p.keep_rows.empty() && g.guard_pairs > 0;  // (no pairs: nothing to build)
    // The LM head runs only on the rows a term reads (a 49k-262k vocabulary is costly). Each term is a
    // cross-entropy, the mean over its rows: with one-hot labels for the learn and rejected rows, with the
    // reference's distributions for the keep rows (which, less the reference's entropy, is the KL).
    auto rows_logits = [&](const std::vector<int32_t> & rows, ggml_tensor ** rows_t) {
        *rows_t = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, (int64_t) rows.size());
        ggml_set_input(*rows_t);
        return lm_logits(ctx, model_, ggml_get_rows(ctx, hidden, *rows_t));
    };
    auto labels = [&](size_t rows, ggml_tensor ** labels_t) {
        *labels_t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, model_.n_vocab, (int64_t) rows);
        ggml_set_input(*labels_t);
        return *labels_t;
    };
    ggml_tensor * loss = nullptr;
    auto add = [&](ggml_tensor * term) { loss = loss == nullptr ? term : ggml_add(ctx, loss, term); };
    auto output_argmax = [&](ggml_tensor * logits, ggml_tensor ** out) {
        *out = ggml_argmax(ctx, logits);
        ggml_set_output(*out);
        ggml_build_forward_expand(g.gf, *out);
    };
    if (!p.learn_rows.empty()) {
        ggml_tensor * logits_l = rows_logits(p.learn_rows, &g.rows_l);
        if (argmax) {
            output_argmax(logits_l, &g.learn_argmax);
        }
        ggml_tensor * ce_l = ggml_cross_entropy_loss(ctx, logits_l, labels(p.learn_rows.size(), &g.labels_l));
        g.logp_c = ggml_scale(ctx, ce_l, -(float) p.learn_rows.size());  // sum of log p(learn token)
        add(ggml_scale(ctx, ce_l, w.nll));
        if (w.first > 0) {
            // The first token of each correction once more (trainer.h): a mean over corrections, not tokens. Its rows'
            // logits are taken from the learn rows' (the LM head once).
            g.rows_f = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, (int64_t) p.first_learn.size());
            ggml_set_input(g.rows_f);
            ggml_tensor * ce_f = ggml_cross_entropy_loss(ctx, ggml_get_rows(ctx, logits_l, g.rows_f), labels(p.first_learn.size(), &g.labels_f));
            add(ggml_scale(ctx, ce_f, w.first));
        }
    }
    if ((with_kl || with_guard || keep_logits || argmax) && !p.keep_rows.empty()) {
        ggml_tensor * logits_k = rows_logits(p.keep_rows, &g.rows_k);
        if (argmax) {
            output_argmax(logits_k, &g.keep_argmax);
        }
        if (keep_logits) {
            g.keep_logits = logits_k;
            ggml_set_output(logits_k);
            ggml_build_forward_expand(g.gf, logits_k);
        }
        if (with_kl) {
            g.keep_entropy = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
            ggml_set_input(g.keep_entropy);
            g.kl = ggml_sub(ctx, ggml_cross_entropy_loss(ctx, logits_k, labels(p.keep_rows.size(), &g.labels_k)), g.keep_entropy);
            add(ggml_scale(ctx, g.kl, w.kl));
        }
        if (with_guard) {
            // The guard (trainer.h): per (row, token) pair, relu(z_token - z_approved + GUARD_MARGIN) on the logits (the
            // log-odds against the approved token: log-softmax cancels), times the pair's weight, summed. The pairs'
            // logits are gathered from the keep rows' logits seen as one column ([1, V * rows]): the forward costs
            // vectors of the pairs' length; the backward scatters each gather's gradient into a logits-sized tensor
            // (get_rows_back), two of them, against ~10 for the term written on [V, rows] matrices.
            ggml_tensor * flat = ggml_reshape_2d(ctx, logits_k, 1, ggml_nelements(logits_k));
            auto pair_input = [&](ggml_type type, ggml_tensor ** t) {
                *t = ggml_new_tensor_1d(ctx, type, g.guard_pairs);
                ggml_set_input(*t);
                return *t;
            };
            ggml_tensor * z = ggml_get_rows(ctx, flat, pair_input(GGML_TYPE_I32, &g.guard_at));                    // [1, pairs]
            ggml_tensor * z_approved = ggml_get_rows(ctx, flat, pair_input(GGML_TYPE_I32, &g.guard_approved_at));  // [1, pairs]
            ggml_tensor * over = ggml_relu(ctx, ggml_scale_bias(ctx, ggml_sub(ctx, z, z_approved), 1.0f, GUARD_MARGIN));
            ggml_tensor * weight = ggml_reshape_2d(ctx, pair_input(GGML_TYPE_F32, &g.guard_weight), 1, g.guard_pairs);
            add(ggml_scale(ctx, ggml_sum(ctx, ggml_mul(ctx, over, weight)), w.guard));
        }
    }
    if (w.unlikelihood > 0 && !p.avoid_rows.empty()) {
        // Unlikelihood (Welleck et al. 2019): mean over the avoid rows of -log(1 - p(token)), p from the softmax.
        // Only the token's own probability is pushed down; the rest of the row shares what it loses.
        const int64_t n = (int64_t) p.avoid_rows.size();
        ggml_tensor * probs = ggml_soft_max(ctx, rows_logits(p.avoid_rows, &g.rows_a));
        ggml_tensor * p_tok = ggml_sum_rows(ctx, ggml_mul(ctx, probs, labels((size_t) n, &g.labels_a)));  // [1, n]
        g.one_a = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 1, n);
        ggml_set_input(g.one_a);
        ggml_tensor * ul = ggml_scale(ctx, ggml_sum(ctx, ggml_log(ctx, ggml_sub(ctx, g.one_a, p_tok))), -1.0f / (float) n);
        add(ggml_scale(ctx, ul, w.unlikelihood));
    }
    if (!p.rej_rows.empty()) {
        ggml_tensor * ce_r = ggml_cross_entropy_loss(ctx, rows_logits(p.rej_rows, &g.rows_r), labels(p.rej_rows.size(), &g.labels_r));
        g.logp_r = ggml_scale(ctx, ce_r, -(float) p.rej_rows.size());
        if (w.dpo > 0 && g.logp_c != nullptr) {
            g.ref_delta = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
            ggml_set_input(g.ref_delta);
            g.dpo_on = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
            ggml_set_input(g.dpo_on);
            ggml_tensor * z = ggml_sub(ctx, ggml_scale(ctx, ggml_sub(ctx, g.logp_c, g.logp_r), w.beta), g.ref_delta);
            add(ggml_scale(ctx, ggml_mul(ctx, ggml_softplus(ctx, ggml_neg(ctx, z)), g.dpo_on), w.dpo));  // -log sigmoid(z)
        }
        ggml_set_output(g.logp_r);
        ggml_build_forward_expand(g.gf, g.logp_r);
    }
    for (ggml_tensor * t : { g.logp_c, g.kl }) {
        if (t != nullptr) {
            ggml_set_output(t);
            ggml_build_forward_expand(g.gf, t);
        }
    }
    if (loss != nullptr) {
        g.loss = ggml_scale(ctx, loss, loss_scale);
        ggml_set_output(g.loss);
        ggml_build_forward_expand(g.gf, g.loss);
    }
}

}  // namespace steer::train
