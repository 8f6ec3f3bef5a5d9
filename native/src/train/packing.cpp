#include "packing.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace steer::train {

packing pack(const example & e, bool stand_in_rejected, bool with_keep, const std::vector<bool> * blank) {
    const int32_t n = (int32_t) e.tokens.size();
    if (n < 2) {
        throw std::invalid_argument("an example needs at least two tokens");
    }
    if (e.roles.size() != e.tokens.size()) {
        throw std::invalid_argument("an example needs one role per token");
    }
    if (e.fork != -1 && (e.fork < 1 || e.fork > n)) {
        throw std::invalid_argument("the fork must be -1 or within [1, tokens]");
    }
    if (!e.rejected.empty() && e.fork < 1) {
        throw std::invalid_argument("a rejected span needs a fork");
    }
    for (uint8_t r : e.roles) {
        if (r > (uint8_t) role::avoid) {
            throw std::invalid_argument("role " + std::to_string(r) + " is not none (0), keep (1), learn (2) or avoid (3)");
        }
    }
    packing p;
    const bool branch = !e.rejected.empty() || stand_in_rejected;
    const int32_t fork = e.fork >= 1 ? e.fork : n;  // a stand-in without a fork branches off the end
    // The answer is computed up to the last token a term reads (its row is the one before it), and to the fork.
    int32_t used = branch ? fork : 1;
    for (int32_t i = 1; i < n; i++) {
        if ((role) e.roles[i] == role::learn || (role) e.roles[i] == role::avoid || ((role) e.roles[i] == role::keep && with_keep)) {
            used = std::max(used, i);
        }
    }
    const int32_t trunk = std::min(n, used + 1);
    for (int32_t i = 0; i < trunk; i++) {
        p.tokens.push_back(e.tokens[i]);
        p.positions.push_back(i);
        p.seq.push_back(branch && i >= fork ? 0 : SHARED);
        if (i == 0) {
            continue;
        }
        switch ((role) e.roles[i]) {
            case role::none: break;
            case role::keep:
                if (with_keep) {
                    p.keep_rows.push_back(i - 1);
                    p.keep_next.push_back(e.tokens[i]);
                }
                break;
            case role::learn: p.learn_rows.push_back(i - 1); p.learn_next.push_back(e.tokens[i]); break;
            case role::avoid: p.avoid_rows.push_back(i - 1); p.avoid_next.push_back(e.tokens[i]); break;
        }
    }
    p.longest = trunk;
    // Each correction (a run of learn tokens): its first token that is not only whitespace, or its first if all are.
    auto is_blank = [&](int32_t t) { return blank != nullptr && t >= 0 && (size_t) t < blank->size() && (*blank)[t]; };
    for (size_t k = 0; k < p.learn_rows.size();) {
        size_t end = k + 1;
        while (end < p.learn_rows.size() && p.learn_rows[end] == p.learn_rows[end - 1] + 1) {
            end++;
        }
        size_t word = k;
        while (word < end && is_blank(p.learn_next[word])) {
            word++;
        }
        word = word == end ? k : word;
        p.first_learn.push_back((int32_t) word);
        p.first_next.push_back(p.learn_next[word]);
        k = end;
    }
    if (branch) {
        p.placeholder_rejected = e.rejected.empty();
        const std::vector<int32_t> stand_in = { e.tokens[fork - 1] };
        const std::vector<int32_t> & rej = p.placeholder_rejected ? stand_in : e.rejected;
        const int32_t start = (int32_t) p.tokens.size();
        for (size_t i = 0; i < rej.size(); i++) {
            // The first rejected token is predicted by the row before the fork, the rest by the branch's own rows.
            p.rej_rows.push_back(i == 0 ? fork - 1 : start + (int32_t) i - 1);
            p.rej_next.push_back(rej[i]);
            p.tokens.push_back(rej[i]);
            p.positions.push_back(fork + (int32_t) i);
            p.seq.push_back(1);
        }
        p.longest = std::max(p.longest, fork + (int32_t) rej.size());
    }
    p.T = (int) p.tokens.size();
    return p;
}

void make_masks(const packing & p, int n_swa, std::vector<float> & mask, std::vector<float> & mask_swa) {
    const int T = p.T;
    mask.assign((size_t) T * T, 0.0f);
    for (int q = 0; q < T; q++) {
        for (int k = 0; k < T; k++) {
            const bool same_branch = p.seq[k] == p.seq[q] || p.seq[k] == SHARED;
            mask[(size_t) q * T + k] = (same_branch && p.positions[k] <= p.positions[q]) ? 0.0f : -INFINITY;
        }
    }
    mask_swa.clear();
    if (n_swa > 0) {
        mask_swa = mask;
        for (int q = 0; q < T; q++) {
            for (int k = 0; k < T; k++) {
                if (p.positions[q] - p.positions[k] >= n_swa) {
                    mask_swa[(size_t) q * T + k] = -INFINITY;
                }
            }
        }
    }
}

}  // namespace steer::train
