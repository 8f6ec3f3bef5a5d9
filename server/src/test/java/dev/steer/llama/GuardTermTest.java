package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The guard term (weight {@code guard}): at a keep row after a correction, a guarded token the base holds at least the margin below the
 * approved token must stay that far below it: max(0, log p(token) - log p(approved) + margin), summed over the pairs,
 * over the rows with any. On the tiny llama: the loss against a reference written out here from the
 * logits with the adapter on and off (which rows count is the masking: keep rows only, not the prompt or the
 * corrections; a guarded token that is the row's own next token is left out), zero at the base, its gradient against
 * finite differences entry by entry, the same with activation checkpointing, and that it holds the corrections'
 * tokens down at approved text while the corrections are learned.
 */
class GuardTermTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    /** prompt | approved text (keep) | a correction (learn) | the continuation the person let run (keep). */
    private LoraTrainer.Example answer() {
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] approved = model.tokenize(" the model said", false, false);
        int[] correction = model.tokenize(" a token", false, false);
        int[] continuation = model.tokenize(" and then more of the text the person let run on after it", false, false);
        int n = prompt.length + approved.length + correction.length + continuation.length;
        int[] tokens = new int[n];
        byte[] roles = new byte[n];
        int at = 0;
        for (int[] part : List.of(prompt, approved, correction, continuation)) {
            System.arraycopy(part, 0, tokens, at, part.length);
            byte role = part == prompt ? LoraTrainer.NONE : part == correction ? LoraTrainer.LEARN : LoraTrainer.KEEP;
            Arrays.fill(roles, at, at + part.length, role);
            at += part.length;
        }
        return new LoraTrainer.Example(tokens, roles, -1, new int[0]);
    }

    /** The correction's tokens. */
    private Set<Integer> corrections(LoraTrainer.Example e) {
        Set<Integer> out = new TreeSet<>();
        for (int t : e.tokensOf(LoraTrainer.LEARN)) {
            out.add(t);
        }
        return out;
    }

    private LoraTrainer trainer(int seed) {
        LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
        LoraTrainerTest.perturbB(t, seed + 100, 0.05f);
        return t;
    }

    /**
     * The guard written out: per keep row after the first correction, each guarded token other than the row's own
     * next token that the base keeps at least the margin below the approved token (as the reference holds the base:
     * its top tokens exactly; the approved token outside them gets the rest of the mass spread evenly, a guarded
     * one at most the K-th of them): how far the adapter brings it within the margin; summed, over the rows with any.
     */
    private double reference(LoraTrainer.Example e, Set<Integer> guarded, float[] adapter, LoraTrainer.Reference base) {
        final int K = LoraTrainer.REFERENCE_TOP_K;
        final double m = LoraTrainer.GUARD_MARGIN;
        double sum = 0;
        int rows = 0, k = 0;
        boolean corrected = false;
        for (int i = 1; i < e.tokens().length; i++) {
            corrected |= e.roles()[i] == LoraTrainer.LEARN;
            if (e.roles()[i] != LoraTrainer.KEEP) {
                continue;
            }
            double[] lpA = LoraTrainerTest.logSoftmax(adapter, i - 1, vocab);
            double[] pB = new double[vocab], most = new double[vocab];
            double top = 0, least = 1;
            for (int j = 0; j < K; j++) {
                top += base.keepProbs()[k * K + j];
                least = Math.min(least, base.keepProbs()[k * K + j]);
            }
            Arrays.fill(pB, (1 - top) / (vocab - K));
            Arrays.fill(most, Math.max(least, (1 - top) / (vocab - K)));
            for (int j = 0; j < K; j++) {
                pB[base.keepIds()[k * K + j]] = base.keepProbs()[k * K + j];
                most[base.keepIds()[k * K + j]] = base.keepProbs()[k * K + j];
            }
            k++;
            if (!corrected) {
                continue;  // approved text before the correction is not guarded
            }
            int approved = e.tokens()[i];
            boolean any = false;
            for (int g : guarded) {
                if (g != approved && most[g] <= Math.exp(-m) * pB[approved]) {
                    sum += Math.max(0, lpA[g] - lpA[approved] + m);
                    any = true;
                }
            }
            rows += any ? 1 : 0;
        }
        assertTrue(rows >= 5, "the example has guarded keep rows: " + rows);
        return sum / rows;
    }

    private static LoraTrainer.Weights guardOnly(float weight) {
        return new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 0f, weight);
    }

    @Test
    void lossIsTheMarginExcessAfterTheCorrection() {
        LoraTrainer.Example e = answer();
        Set<Integer> guarded = corrections(e);
        try (LoraTrainer t = trainer(1)) {
            assertTrue(vocab > LoraTrainer.REFERENCE_TOP_K, "the tiny vocabulary has tokens beyond the reference's top: " + vocab);
            LoraTrainer.Reference ref = t.reference(e).guarding(e, guarded);
            double want = reference(e, guarded, t.logits(e.tokens(), true), ref);
            assertTrue(want > 1e-4, "the perturbed adapter moves some mass onto the guarded tokens: " + want);
            assertEquals(2.5 * want, t.evaluate(e, ref, guardOnly(2.5f)).loss(), 1e-4 * (1 + want));
            // without guarded pairs the term is there but holds nothing
            assertEquals(0.0, t.evaluate(e, t.reference(e), new LoraTrainer.Weights(1f, 0f, 0.1f, 0f, 0f, 2.5f)).loss()
                    - t.evaluate(e, t.reference(e), new LoraTrainer.Weights(1f, 0f, 0.1f)).loss(), 1e-6);
            // beside the KL: the loss changes by exactly the guard's own term
            LoraTrainer.Evaluation both = t.evaluate(e, ref, new LoraTrainer.Weights(0f, 0f, 0.1f, 1.5f, 0f, 2.5f));
            assertEquals(2.5 * want + 1.5 * both.kl(), both.loss(), 1e-4 * (1 + both.loss()));
        }
    }

    @Test
    void theGuardIsZeroAtTheBaseModel() {
        LoraTrainer.Example e = answer();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 5, 2)) {  // B = 0: the base
            LoraTrainer.Reference ref = t.reference(e).guarding(e, corrections(e));
            assertTrue(ref.guard().length > 0, "pairs to hold");
            assertEquals(0.0, reference(e, corrections(e), t.logits(e.tokens(), true), ref), 1e-9, "no guarded token within reach at the base");
            assertEquals(0.0, t.evaluate(e, ref, guardOnly(10f)).loss(), 1e-4);
        }
    }

    @Test
    void guardGradientMatchesFiniteDifferencesEntryByEntry() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = answer();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference ref = t.reference(e).guarding(e, corrections(e));
            for (LoraTrainer.Weights w : List.of(guardOnly(1f), new LoraTrainer.Weights(1f, 0f, 0.1f, 2f, 0f, 3f))) {
                for (String name : List.of("blk.0.attn_q.weight.lora_a", "blk.1.attn_v.weight.lora_b", "blk.0.ffn_down.weight.lora_b",
                        "blk.1.ffn_gate.weight.lora_a")) {
                    checkDirections(t, e, ref, w, name);
                    checkEntries(t, e, ref, w, name);
                }
            }
        }
    }

    /**
     * The guard is piecewise linear in the logits (a relu per pair), so its finite differences take a small step
     * (measured: along g, 4.47 at a step of 0.02 against 5.08 analytic, 5.082 at 0.005 and below): along g and two
     * random directions, each seeing every entry.
     */
    private static void checkDirections(LoraTrainer t, LoraTrainer.Example e, LoraTrainer.Reference ref, LoraTrainer.Weights w, String name) {
        float[] g = t.gradient(e, ref, w, name);
        double gn = 0;
        for (float x : g) {
            gn += x * x;
        }
        gn = Math.sqrt(gn);
        assertTrue(gn > 0, name + ": non-zero gradient");
        Random rnd = new Random(name.hashCode());
        for (int d = 0; d < 3; d++) {
            double[] v = new double[g.length];
            double vn = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] = d == 0 ? g[i] : rnd.nextGaussian();
                vn += v[i] * v[i];
            }
            double analytic = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] /= Math.sqrt(vn);
                analytic += v[i] * g[i];
            }
            double numeric = LoraTrainerTest.directional(t, e, ref, w, name, v, STEP);
            assertTrue(Math.abs(numeric - analytic) <= 0.01 * Math.max(Math.abs(analytic), 0.05 * gn) + 1e-5,
                    name + " direction " + d + ": analytic " + analytic + " vs finite difference " + numeric);
        }
    }

    private static final float STEP = 0.002f;

    /** d loss / d entry against a central difference, for the entries of largest gradient and some at random. */
    private static void checkEntries(LoraTrainer t, LoraTrainer.Example e, LoraTrainer.Reference ref, LoraTrainer.Weights w, String name) {
        float[] g = t.gradient(e, ref, w, name);
        Integer[] order = new Integer[g.length];
        for (int i = 0; i < g.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(Math.abs(g[b]), Math.abs(g[a])));
        Random rnd = new Random(name.hashCode());
        float gmax = Math.abs(g[order[0]]);
        float[] p0 = t.tensor(name);
        for (int k = 0; k < 8; k++) {
            int i = k < 4 ? order[k] : rnd.nextInt(g.length);
            float eps = STEP;
            float[] p = p0.clone();
            p[i] = p0[i] + eps;
            t.setTensor(name, p);
            double lp = t.evaluate(e, ref, w).loss();
            p[i] = p0[i] - eps;
            t.setTensor(name, p);
            double lm = t.evaluate(e, ref, w).loss();
            t.setTensor(name, p0);
            double numeric = (lp - lm) / (2 * eps);
            assertTrue(Math.abs(numeric - g[i]) <= 0.05 * Math.max(Math.abs(g[i]), 0.05 * gmax) + 1e-5,
                    name + "[" + i + "]: analytic " + g[i] + " vs finite difference " + numeric);
        }
    }

    @Test
    void activationCheckpointingGivesTheGuardTheSameGradients() {
        LoraTrainer.Example e = answer();
        // Every block, and in two runs (the guard and the KL in the last run's graph, with its head).
        try (LoraTrainer plain = trainer(7); LoraTrainer ckpt = trainer(7); LoraTrainer runs = trainer(7)) {
            ckpt.checkpointing(true);
            runs.checkpointing(2);
            LoraTrainer.Reference ref = plain.reference(e).guarding(e, corrections(e));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 0f, 0.1f, 2f, 0f, 3f);
            assertTrue(plain.evaluate(e, ref, guardOnly(1f)).loss() > 1e-4, "the guard is active here");
            for (String name : List.of("blk.0.attn_k.weight.lora_a", "blk.1.ffn_up.weight.lora_b")) {
                float[] a = plain.gradient(e, ref, w, name);
                for (LoraTrainer other : List.of(ckpt, runs)) {
                    float[] b = other.gradient(e, ref, w, name);
                    double d = 0, n = 0;
                    for (int i = 0; i < a.length; i++) {
                        d += (a[i] - b[i]) * (a[i] - b[i]);
                        n += a[i] * a[i];
                    }
                    assertTrue(n > 0 && Math.sqrt(d / n) < 1e-5, name + ": relative difference " + Math.sqrt(d / n));
                }
            }
        }
    }

    @Test
    void whileTheCorrectionIsLearnedTheGuardHoldsItsTokensDownAtTheApprovedText() {
        LoraTrainer.Example e = answer();
        Set<Integer> guarded = corrections(e);
        double[] excess = new double[2];
        for (int run = 0; run < 2; run++) {
            try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2)) {
                LoraTrainer.Reference ref = t.reference(e).guarding(e, guarded);
                LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 0f, 0.1f, 0f, 0f, run == 0 ? 0f : 20f);
                for (int step = 0; step < 15; step++) {
                    t.step(List.of(e), List.of(ref), w, 1e-2f, 0f);
                }
                excess[run] = reference(e, guarded, t.logits(e.tokens(), true), ref);
            }
        }
        assertTrue(excess[0] > 1e-3, "learning the correction alone makes its tokens likelier at the approved text: " + excess[0]);
        assertTrue(excess[1] < 0.5 * excess[0], "with the guard, far less: " + excess[1] + " vs " + excess[0]);
    }

    @Test
    void onlyTheTextAfterACorrectionIsGuarded() {
        LoraTrainer.Example e = answer();
        try (LoraTrainer t = trainer(8)) {
            LoraTrainer.Reference ref = t.reference(e).guarding(e, Set.of(5, 6));
            int before = 0;  // keep rows before the correction
            for (int i = 1; i < e.roles().length && e.roles()[i] != LoraTrainer.LEARN; i++) {
                before += e.roles()[i] == LoraTrainer.KEEP ? 1 : 0;
            }
            int after = e.count(LoraTrainer.KEEP) - before;
            assertTrue(before > 0 && after > 0, before + " / " + after);
            for (int i = 0; i < ref.guard().length; i += 2) {
                assertTrue(ref.guard()[i] >= before, "a guarded row after the correction: " + ref.guard()[i]);
            }
            assertTrue(ref.guard().length >= 2 * (2 * after - 2), "both tokens at (nearly) every row after it: " + ref.guard().length);
            // an answer nobody corrected (a replay answer) gets no pairs: its start is where a habit may show
            byte[] roles = e.roles().clone();
            for (int i = 0; i < roles.length; i++) {
                roles[i] = roles[i] == LoraTrainer.LEARN ? LoraTrainer.KEEP : roles[i];
            }
            LoraTrainer.Example replay = new LoraTrainer.Example(e.tokens(), roles, -1, new int[0]);
            assertEquals(0, t.reference(replay).guarding(replay, Set.of(5, 6)).guard().length);
        }
    }

    @Test
    void guardPairsOutsideTheExampleAreRefusedAndChangeNothing() {
        LoraTrainer.Example e = answer();
        try (LoraTrainer t = trainer(6)) {
            LoraTrainer.Reference ref = t.reference(e);
            int keepRows = e.count(LoraTrainer.KEEP);
            float[] before = t.tensor("blk.0.attn_q.weight.lora_b");
            for (int[] pairs : List.of(new int[] {keepRows, 1}, new int[] {0, vocab}, new int[] {-1, 1}, new int[] {0})) {
                LoraTrainer.Reference bad = new LoraTrainer.Reference(ref.logpChosen(), ref.logpRejected(), ref.keepIds(), ref.keepProbs(),
                        ref.keepEntropy(), pairs);
                assertThrows(IllegalArgumentException.class, () -> t.evaluate(e, bad, guardOnly(1f)), Arrays.toString(pairs));
                assertThrows(IllegalArgumentException.class, () -> t.step(List.of(e), List.of(bad), guardOnly(1f), 1e-2f, 0f), Arrays.toString(pairs));
            }
            assertTrue(Arrays.equals(before, t.tensor("blk.0.attn_q.weight.lora_b")), "a refused step changes nothing");
        }
    }
}
