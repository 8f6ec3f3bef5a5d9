// How one training example becomes the one packed sequence a training graph computes (host-only: no ggml here,
// so it is unit-testable and the graph code only reads the result).
//
// An example is the answer as the person left it, one token sequence: the prompt, then the model's text the person
// accepted, their corrections, and the continuations they let run. Each token has a role, which says what the row
// predicting it learns:
//   none   the prompt: nothing (the model does not write it)
//   keep   text the person approved: the adapter's next-token distribution there should stay the base model's
//          (KL(base || adapter) toward a reference computed once with the adapter off)
//   learn  a correction: imitate it (cross-entropy)
//   avoid  a token of the model's own text that says again what the answer already said (a loop starting):
//          make it unlikely there (unlikelihood, -log(1 - p))
// Optionally the model's rejected continuation branches off at `fork` (the first token of the last correction):
// it sees the tokens before the fork and itself, never the answer after the fork, for the preference term.
#pragma once

#include <cstdint>
#include <vector>

namespace steer::train {

enum class role : uint8_t { none = 0, keep = 1, learn = 2, avoid = 3 };

struct example {
    std::vector<int32_t> tokens;
    std::vector<uint8_t> roles;      // one per token (roles[0] is never predicted, so it is ignored)
    int32_t fork = -1;               // where `rejected` branches off tokens; -1: no rejected branch
    std::vector<int32_t> rejected;
};

// The sequence id of the tokens both branches see.
inline constexpr int32_t SHARED = -1;

struct packing {
    int T = 0;
    std::vector<int32_t> tokens, positions, seq;  // seq: SHARED (before the fork), 0 (the answer from the fork), 1 (rejected)
    std::vector<int32_t> learn_rows, learn_next;  // rows whose next token is a correction token, and those tokens
    std::vector<int32_t> first_learn, first_next; // which of those (indices into learn_rows) predict each
                                                  // correction's first word (its first token that is not only
                                                  // whitespace, else its first): where greedy decoding chooses the
                                                  // correction or the model's own way; and those tokens
    std::vector<int32_t> keep_rows;               // rows whose next-token distribution is kept (their next tokens: keep_next)
    std::vector<int32_t> keep_next;
    std::vector<int32_t> avoid_rows, avoid_next;  // rows whose next token is to be made unlikely, and those tokens
    std::vector<int32_t> rej_rows, rej_next;      // the rejected branch
    bool placeholder_rejected = false;            // the rejected branch is a one-token stand-in (see pack)
    int32_t longest = 0;                          // the largest position + 1: what the model's context must hold
};

// Checks the example's shape (throws std::invalid_argument) and packs it: [tokens | rejected], the rejected
// positions continuing from the fork. With `stand_in_rejected`, an example without a rejected branch gets a
// one-token stand-in (its preference term is switched off by an input), so every training graph of a job has the
// same loss terms. Without `with_keep` the keep rows are not wanted (no KL term): they are left out, and so are the
// answer's tokens after the last row a term reads (causal attention: they change nothing before them).
// `blank`, when given, says per token id whether the token is only whitespace: a correction's leading line break
// ("\n\nGood luck" after the model's end) says where the text goes on, not what it says, so its first word is the
// one the first-token term weighs.
packing pack(const example & e, bool stand_in_rejected, bool with_keep = true, const std::vector<bool> * blank = nullptr);

// Which keys each query row may see ([T, T], 0 or -inf): the same branch (or the shared part) and not later
// positions; with n_swa > 0, mask_swa also hides keys n_swa or more positions back (llama.cpp's is_masked_swa).
void make_masks(const packing & p, int n_swa, std::vector<float> & mask, std::vector<float> & mask_swa);

}  // namespace steer::train
