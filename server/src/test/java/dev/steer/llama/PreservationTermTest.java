package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The preservation (KL) term and the roles of an example on the tiny llama: the trainer's loss against a reference
 * implementation written out here from the logits, row by row (which rows count for what is the masking), its
 * reference distributions against the base logits, its gradient against finite differences, and that training
 * with it keeps the approved rows closer to the base than training without it.
 */
class PreservationTermTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    private LoraTrainer trainer(int seed) {
        return LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
    }

    /** prompt (none) | kept text | correction (learn) | continuation (keep), and a rejected branch at the correction. */
    private LoraTrainer.Example example() {
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] kept = model.tokenize(" the model is", false, false);
        int[] correction = model.tokenize(" the steer", false, false);
        int[] continuation = model.tokenize(" in a token", false, false);
        int[] tokens = concat(prompt, kept, correction, continuation);
        byte[] roles = new byte[tokens.length];
        int fork = prompt.length + kept.length;
        Arrays.fill(roles, prompt.length, tokens.length, LoraTrainer.KEEP);
        Arrays.fill(roles, fork, fork + correction.length, LoraTrainer.LEARN);
        return new LoraTrainer.Example(tokens, roles, fork, model.tokenize(" a token", false, false));
    }

    private static void perturb(LoraTrainer t, int seed) {
        LoraTrainerTest.perturbB(t, seed, 0.05f);
    }

    private double[] logSoftmax(float[] logits, int row) {
        return LoraTrainerTest.logSoftmax(logits, row, vocab);
    }

    @Test
    void referenceHoldsTheBaseModelsTopTokensOnEveryKeepRow() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        try (LoraTrainer t = trainer(1)) {
            perturb(t, 2);  // the reference is the base: the adapter must not matter
            LoraTrainer.Reference ref = t.reference(e);
            float[] base = t.logits(e.tokens(), false);
            int K = LoraTrainer.REFERENCE_TOP_K;
            List<Integer> keepRows = rows(e, LoraTrainer.KEEP);
            assertEquals(keepRows.size() * K, ref.keepIds().length);
            assertEquals(e.count(LoraTrainer.KEEP), keepRows.size());
            double entropy = 0;
            for (int r = 0; r < keepRows.size(); r++) {
                double[] lp = logSoftmax(base, keepRows.get(r));
                Integer[] order = new Integer[vocab];
                for (int v = 0; v < vocab; v++) {
                    order[v] = v;
                }
                Arrays.sort(order, (a, b) -> Double.compare(lp[b], lp[a]));
                double mass = 0;
                for (int k = 0; k < K; k++) {
                    assertEquals(lp[ref.keepIds()[r * K + k]], lp[order[k]], 1e-5, "row " + r + " rank " + k + ": one of the top tokens");
                    double q = Math.exp(lp[order[k]]);
                    assertEquals(q, ref.keepProbs()[r * K + k], 1e-6, "row " + r + " rank " + k + ": the base's probability");
                    entropy -= q * Math.log(q);
                    mass += q;
                }
                double u = (1 - mass) / (vocab - K);  // the rest, spread evenly
                entropy -= (1 - mass) * Math.log(u);
            }
            assertEquals(entropy / keepRows.size(), ref.keepEntropy(), 1e-4);
        }
    }

    /** [mean CE over the learn rows, mean KL(ref || adapter) over the keep rows], from the adapter's logits. */
    private double[] terms(LoraTrainer.Example e, LoraTrainer.Reference ref, float[] logits) {
        double ce = 0, kl = 0;
        List<Integer> learn = rows(e, LoraTrainer.LEARN), keep = rows(e, LoraTrainer.KEEP);
        for (int row : learn) {
            ce -= logSoftmax(logits, row)[e.tokens()[row + 1]];
        }
        for (int r = 0; r < keep.size(); r++) {
            kl += klOfRow(ref, r, logSoftmax(logits, keep.get(r)));
        }
        return new double[] {learn.isEmpty() ? 0 : ce / learn.size(), keep.isEmpty() ? 0 : kl / keep.size()};
    }

    @Test
    void lossIsTheWeightedMeanOfItsTermsOverTheRowsOfEachRole() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        // The same answer with the kept text before the fork turned into prompt: those rows must stop counting.
        byte[] roles = e.roles().clone();
        Arrays.fill(roles, 0, e.fork(), LoraTrainer.NONE);
        LoraTrainer.Example fewer = new LoraTrainer.Example(e.tokens(), roles, e.fork(), e.rejected());
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference ref = t.reference(e), refFewer = t.reference(fewer);
            perturb(t, 3);
            float[] logits = t.logits(e.tokens(), true);  // the trunk's rows do not see the rejected branch
            LoraTrainer.Weights w = new LoraTrainer.Weights(0.7f, 0f, 0.1f, 1.3f);
            for (var c : List.of(new Object[] {e, ref}, new Object[] {fewer, refFewer})) {
                LoraTrainer.Example x = (LoraTrainer.Example) c[0];
                LoraTrainer.Reference r = (LoraTrainer.Reference) c[1];
                double[] want = terms(x, r, logits);
                assertTrue(want[1] > 1e-3, "the perturbed adapter moved away from the base: KL " + want[1]);
                LoraTrainer.Evaluation ev = t.evaluate(x, r, w);
                assertEquals(0.7 * want[0] + 1.3 * want[1], ev.loss(), 1e-4 * (1 + Math.abs(ev.loss())), "loss = 0.7 CE(learn) + 1.3 KL(keep)");
                assertEquals(want[1], ev.kl(), 1e-4 * (1 + want[1]));
            }
            assertTrue(fewer.count(LoraTrainer.KEEP) < e.count(LoraTrainer.KEEP));
            assertTrue(Math.abs(t.evaluate(fewer, refFewer, w).kl() - t.evaluate(e, ref, w).kl()) > 1e-4, "the rows differ, so does the KL");
        }
    }

    /** KL(target || p) of one keep row: the reference's top tokens exactly, the rest of its mass spread evenly. */
    private double klOfRow(LoraTrainer.Reference ref, int r, double[] lp) {
        int K = LoraTrainer.REFERENCE_TOP_K;
        double[] target = new double[vocab];
        double mass = 0;
        for (int k = 0; k < K; k++) {
            mass += ref.keepProbs()[r * K + k];
        }
        java.util.Arrays.fill(target, (1 - mass) / (vocab - K));
        for (int k = 0; k < K; k++) {
            target[ref.keepIds()[r * K + k]] = ref.keepProbs()[r * K + k];
        }
        double kl = 0;
        for (int v = 0; v < vocab; v++) {
            kl += target[v] > 0 ? target[v] * (Math.log(target[v]) - lp[v]) : 0;
        }
        return kl;
    }

    @Test
    void withTheAdapterOffOnlyTheSpreadOfTheRestScores() {
        LoraTrainer.Example e = example();
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference ref = t.reference(e);
            // B = 0: the adapter is the base. The top tokens match exactly; what is left is the evenly spread rest
            // against the base's own tail, and the gradient on the top tokens is 0.
            float kl = t.evaluate(e, ref, new LoraTrainer.Weights(0f, 0f, 0.1f, 1f)).kl();
            float[] base = t.logits(e.tokens(), false);
            double expected = 0;
            List<Integer> keep = rows(e, LoraTrainer.KEEP);
            for (int r = 0; r < keep.size(); r++) {
                expected += klOfRow(ref, r, logSoftmax(base, keep.get(r)));
            }
            assertEquals(expected / keep.size(), kl, 1e-4);
        }
    }

    @Test
    void klGradientMatchesFiniteDifferences() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference ref = t.reference(e);
            perturb(t, 5);
            for (LoraTrainer.Weights w : List.of(new LoraTrainer.Weights(0f, 0f, 0.1f, 1f), new LoraTrainer.Weights(1f, 1f, 0.5f, 2f))) {
                for (String name : List.of("blk.0.attn_q.weight.lora_a", "blk.1.attn_v.weight.lora_b", "blk.0.ffn_down.weight.lora_b",
                        "blk.1.ffn_gate.weight.lora_a")) {
                    LoraTrainerTest.checkGradient(t, e, ref, w, name);
                }
            }
        }
    }

    @Test
    void aKeepOnlyExampleTrainsOnTheKlAloneAndAnEmptyOneIsRefused() {
        TestModels.assumeCpuExactness();
        int[] tokens = model.tokenize("hello world, the model is in the steer", true, false);
        byte[] roles = new byte[tokens.length];
        Arrays.fill(roles, 3, tokens.length, LoraTrainer.KEEP);
        LoraTrainer.Example replay = new LoraTrainer.Example(tokens, roles, -1, new int[0]);
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference ref = t.reference(replay);
            perturb(t, 6);
            LoraTrainer.Weights klOnly = new LoraTrainer.Weights(1f, 0f, 0.1f, 1f);
            LoraTrainerTest.checkGradient(t, replay, ref, klOnly, "blk.1.attn_output.weight.lora_b");
            LoraTrainer.Example nothing = new LoraTrainer.Example(tokens, new byte[tokens.length], -1, new int[0]);
            assertThrows(IllegalArgumentException.class, () -> t.gradient(nothing, ref, klOnly, "blk.0.attn_q.weight.lora_a"));
            assertThrows(IllegalArgumentException.class, () -> t.gradient(replay, ref, LoraTrainer.Weights.sftOnly(), "blk.0.attn_q.weight.lora_a"),
                    "keep rows without a KL weight are nothing to train on");
        }
    }

    @Test
    void trainingWithTheKlTermKeepsTheApprovedTextCloserToTheBase() {
        LoraTrainer.Example e = example();
        double[] kls = new double[2];
        for (int run = 0; run < 2; run++) {
            float klWeight = run == 0 ? 0f : 1f;
            try (LoraTrainer t = trainer(7)) {
                LoraTrainer.Reference ref = t.reference(e);
                LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 0f, 0.1f, klWeight);
                for (int step = 0; step < 12; step++) {
                    t.step(List.of(e), List.of(ref), w, new LoraTrainer.Optimizer(5e-3f, 0f, 1f));
                }
                kls[run] = t.evaluate(e, ref, new LoraTrainer.Weights(0f, 0f, 0.1f, 1f)).kl();
            }
        }
        assertTrue(kls[1] < 0.5 * kls[0], "KL on the approved rows after training: without the term " + kls[0] + ", with it " + kls[1]);
    }

    /** Rows (positions predicting token i+1) whose token has the role. */
    private static List<Integer> rows(LoraTrainer.Example e, byte role) {
        List<Integer> out = new ArrayList<>();
        for (int i = 1; i < e.tokens().length; i++) {
            if (e.roles()[i] == role) {
                out.add(i - 1);
            }
        }
        return out;
    }

    private static int[] concat(int[]... parts) {
        int n = Arrays.stream(parts).mapToInt(p -> p.length).sum();
        int[] out = new int[n];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
