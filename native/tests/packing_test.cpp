// Host-only unit tests of the trainer's packing and attention masks (packing.h): no ggml, no JVM, no model. Built
// and run by Maven's test phase (native/pom.xml); a failed check prints where and exits non-zero.
#include "packing.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace steer::train;

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

using ints = std::vector<int32_t>;

static bool throws(const std::function<void()> & f) {
    try {
        f();
    } catch (const std::invalid_argument &) {
        return true;
    }
    return false;
}

static bool sees(const std::vector<float> & mask, int T, int q, int k) {
    return mask[(size_t) q * T + k] == 0.0f;
}

static example answer() {
    // prompt 10, kept 11 12, correction 13 14, continuation 15: roles say what the row predicting each token learns
    return example{ { 10, 11, 12, 13, 14, 15 }, { 0, 0, 1, 2, 2, 1 }, -1, {} };
}

static void keepAndLearnRowsArePredictingRows() {
    packing p = pack(answer(), false, true);
    CHECK(p.T == 6);
    CHECK((p.positions == ints{ 0, 1, 2, 3, 4, 5 }));
    CHECK((p.seq == ints{ SHARED, SHARED, SHARED, SHARED, SHARED, SHARED }));
    CHECK((p.keep_rows == ints{ 1, 4 }) && (p.keep_next == ints{ 12, 15 }));
    CHECK((p.learn_rows == ints{ 2, 3 }) && (p.learn_next == ints{ 13, 14 }));
    CHECK(p.rej_rows.empty() && !p.placeholder_rejected);
    CHECK(p.longest == 6);
}

static void eachCorrectionsFirstLearnRowIsAFirstRow() {
    // prompt 10, kept 11, correction 12 13, kept 14, correction 15 16 17, kept 18, a one-token lesson 19 (a stop's end)
    example e{ { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19 }, { 0, 1, 2, 2, 1, 2, 2, 2, 1, 2 }, -1, {} };
    packing p = pack(e, false, true);
    CHECK((p.learn_rows == ints{ 1, 2, 4, 5, 6, 8 }));
    CHECK((p.first_learn == ints{ 0, 2, 5 }) && (p.first_next == ints{ 12, 15, 19 }));  // learn rows 1, 4, 8
    // a correction right after the prompt: its first token is learned by the prompt's last row
    packing q = pack(example{ { 10, 12, 13 }, { 0, 2, 2 }, -1, {} }, false, false);
    CHECK((q.learn_rows == ints{ 0, 1 }) && (q.first_learn == ints{ 0 }) && (q.first_next == ints{ 12 }));
    CHECK(pack(example{ { 10, 11 }, { 0, 1 }, -1, {} }, false, true).first_learn.empty());  // nothing learned
    // token 30 is only whitespace: a correction "30 31 32" after the end weighs 31, its first word; one of 30 alone, 30
    std::vector<bool> blank(40, false);
    blank[30] = true;
    example after_end{ { 10, 11, 30, 31, 32, 1, 30 }, { 0, 1, 2, 2, 2, 1, 2 }, -1, {} };
    packing b = pack(after_end, false, true, &blank);
    CHECK((b.learn_rows == ints{ 1, 2, 3, 5 }) && (b.first_learn == ints{ 1, 3 }) && (b.first_next == ints{ 31, 30 }));
    CHECK((pack(after_end, false, true).first_learn == ints{ 0, 3 }));  // without the table: the first tokens
}

static void avoidRowsPredictTheTokensToMakeUnlikely() {
    // prompt 10, kept 11 12, then 11 12 said again: 12's second time is avoided, nothing after it is read
    example e{ { 10, 11, 12, 11, 12, 13 }, { 0, 1, 1, 1, 3, 0 }, -1, {} };
    packing p = pack(e, false, true);
    CHECK((p.avoid_rows == ints{ 3 }) && (p.avoid_next == ints{ 12 }));
    CHECK((p.keep_rows == ints{ 0, 1, 2 }));
    CHECK(p.T == 5);  // token 13 is read by no term
    CHECK((pack(e, false, false).avoid_rows == ints{ 3 }));  // without the KL's keep rows too
    CHECK(throws([] { pack(example{ { 1, 2 }, { 0, 4 }, -1, {} }, false); }));  // no role 4
}

static void withoutKeepTheTailAfterTheLastLearnedTokenIsLeftOut() {
    packing p = pack(answer(), false, false);
    CHECK(p.T == 5);  // token 15 is read only by the KL term
    CHECK((p.tokens == ints{ 10, 11, 12, 13, 14 }));
    CHECK(p.keep_rows.empty() && p.keep_next.empty());
    CHECK((p.learn_rows == ints{ 2, 3 }));
}

static void theRejectedBranchContinuesFromTheForkAndSeesOnlyTheSharedPart() {
    example e{ { 10, 11, 12, 13, 14 }, { 0, 1, 2, 2, 1 }, 2, { 90, 91, 92 } };
    packing p = pack(e, false, true);
    CHECK(p.T == 8);
    CHECK((p.tokens == ints{ 10, 11, 12, 13, 14, 90, 91, 92 }));
    CHECK((p.positions == ints{ 0, 1, 2, 3, 4, 2, 3, 4 }));
    CHECK((p.seq == ints{ SHARED, SHARED, 0, 0, 0, 1, 1, 1 }));
    CHECK((p.rej_rows == ints{ 1, 5, 6 }) && (p.rej_next == ints{ 90, 91, 92 }));  // its first token from the row before the fork
    CHECK(p.longest == 5);
    std::vector<float> mask, swa;
    make_masks(p, 0, mask, swa);
    CHECK(swa.empty());
    // rejected token 91 (row 6, position 3): the shared prompt and its own branch up to itself, never the answer's
    CHECK(sees(mask, 8, 6, 0) && sees(mask, 8, 6, 1) && sees(mask, 8, 6, 5) && sees(mask, 8, 6, 6));
    CHECK(!sees(mask, 8, 6, 2) && !sees(mask, 8, 6, 3) && !sees(mask, 8, 6, 7));
    // the answer's token 13 (row 3): the shared part and its own branch, not the rejected one, not the future
    CHECK(sees(mask, 8, 3, 0) && sees(mask, 8, 3, 2) && sees(mask, 8, 3, 3));
    CHECK(!sees(mask, 8, 3, 4) && !sees(mask, 8, 3, 5) && !sees(mask, 8, 3, 6));
    // causal within the shared part
    CHECK(sees(mask, 8, 1, 0) && !sees(mask, 8, 0, 1));
}

static void aStandInRejectedIsOneTokenAfterTheEnd() {
    packing p = pack(answer(), true, true);
    CHECK(p.placeholder_rejected);
    CHECK(p.T == 7);
    CHECK((p.rej_rows == ints{ 5 }) && (p.rej_next == ints{ 15 }));  // the answer's last token, predicted again
    CHECK(p.positions[6] == 6 && p.seq[6] == 1);
}

static void theSlidingWindowHidesKeysTooFarBack() {
    packing p = pack(answer(), false, true);
    std::vector<float> mask, swa;
    make_masks(p, 2, mask, swa);
    CHECK(swa.size() == mask.size());
    CHECK(sees(swa, 6, 4, 4) && sees(swa, 6, 4, 3));
    CHECK(!sees(swa, 6, 4, 2) && !sees(swa, 6, 4, 0));  // 2 or more positions back
    CHECK(sees(mask, 6, 4, 0));                         // the full mask still sees it
    CHECK(!sees(swa, 6, 3, 4));                         // and the window is still causal
}

static void badExamplesAreRefused() {
    CHECK(throws([] { pack(example{ { 1 }, { 0 }, -1, {} }, false); }));                      // one token
    CHECK(throws([] { pack(example{ { 1, 2 }, { 0 }, -1, {} }, false); }));                   // roles != tokens
    CHECK(throws([] { pack(example{ { 1, 2 }, { 0, 9 }, -1, {} }, false); }));                // unknown role
    CHECK(throws([] { pack(example{ { 1, 2 }, { 0, 2 }, 3, {} }, false); }));                 // fork past the end
    CHECK(throws([] { pack(example{ { 1, 2 }, { 0, 2 }, -1, { 7 } }, false); }));             // rejected without a fork
    CHECK(!throws([] { pack(example{ { 1, 2 }, { 0, 2 }, 2, { 7 } }, false); }));             // fork at the end is fine
}

int main() {
    keepAndLearnRowsArePredictingRows();
    eachCorrectionsFirstLearnRowIsAFirstRow();
    avoidRowsPredictTheTokensToMakeUnlikely();
    withoutKeepTheTailAfterTheLastLearnedTokenIsLeftOut();
    theRejectedBranchContinuesFromTheForkAndSeesOnlyTheSharedPart();
    aStandInRejectedIsOneTokenAfterTheEnd();
    theSlidingWindowHidesKeysTooFarBack();
    badExamplesAreRefused();
    if (failures > 0) {
        std::fprintf(stderr, "packing_test: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("packing_test: all checks passed\n");
    return 0;
}
