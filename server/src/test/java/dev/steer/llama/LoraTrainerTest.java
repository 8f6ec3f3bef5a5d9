package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The training graph on the tiny llama (F32 weights): parity with llama.cpp, gradients, masking, round trip, learning. */
class LoraTrainerTest {
    private final LlamaModel model = TestModels.tinyLlama();

    private LoraTrainer trainer(int seed) {
        return LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
    }

    /** llama.cpp's own logits for every position (F32 KV cache, no flash attention: comparable to 1e-5). */
    private float[] llamaLogits(int[] tokens, LoraAdapter adapter, float scale) {
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            if (adapter != null) {
                ctx.setAdapters(List.of(new LlamaContext.AdapterScale(adapter, scale)));
            }
            Batch b = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                b.add(tokens[i], i, 0, true);
            }
            ctx.decode(b);
            float[] all = new float[tokens.length * model.vocabSize()];
            for (int i = 0; i < tokens.length; i++) {
                System.arraycopy(ctx.logits(i), 0, all, i * model.vocabSize(), model.vocabSize());
            }
            ctx.setAdapters(List.of());
            return all;
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    private LoraTrainer.Example example() {
        int[] context = model.tokenize("hello world, the model is", true, false);
        int[] chosen = model.tokenize(" the steer", false, false);
        int[] rejected = model.tokenize(" a token in", false, false);
        return new LoraTrainer.Example(context, chosen, rejected);
    }

    @Test
    void trainingForwardEqualsLlamaDecode() {
        TestModels.assumeCpuExactness();
        int[] tokens = model.tokenize("hello world, the model is in the steer", true, false);
        try (LoraTrainer t = trainer(1)) {
            double base = maxDiff(llamaLogits(tokens, null, 0), t.logits(tokens, false));
            assertTrue(base < 1e-5, "base logits, max |diff| = " + base);
            assertArrayEquals(t.logits(tokens, false), t.logits(tokens, true), "B = 0: the fresh adapter is the base model");
        }
    }

    /** Gemma 3: sliding-window layers (window 4 over 14 tokens), GELU-gated MLP (its backward is our ggml patch). */
    @Test
    void gemma3MatchesLlamaDecodeAndHasCheckedGradients() {
        TestModels.assumeCpuExactness();
        Path file = dev.steer.testing.TinyModels.writeGemma3(TestModels.dir().resolve("tiny-gemma3.gguf"), 4, 12);
        try (LlamaModel m = LlamaModel.load(file, TestModels.params());
             LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            assertEquals("gemma3", m.info().architecture());
            int[] tokens = m.tokenize("hello world, the model is in the steer", true, false);
            assertTrue(tokens.length > 8, "longer than the window");
            float[] served;
            try (LlamaContext ctx = LlamaContext.create(m, LlamaContext.Params.defaults().withContextSize(256).exact())) {
                Batch b = ctx.newBatch();
                for (int i = 0; i < tokens.length; i++) {
                    b.add(tokens[i], i, 0, true);
                }
                ctx.decode(b);
                served = new float[tokens.length * m.vocabSize()];
                for (int i = 0; i < tokens.length; i++) {
                    System.arraycopy(ctx.logits(i), 0, served, i * m.vocabSize(), m.vocabSize());
                }
            }
            double d = maxDiff(served, t.logits(tokens, false));
            assertTrue(d < 1e-5, "gemma3: training forward vs llama_decode, max |diff| = " + d);
            LoraTrainer.Example e = new LoraTrainer.Example(m.tokenize("hello world, the model", true, false),
                    m.tokenize(" the steer", false, false), m.tokenize(" a token", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            Random rnd = new Random(5);
            for (String b : List.of("blk.0.attn_k.weight.lora_b", "blk.5.attn_v.weight.lora_b", "blk.2.ffn_gate.weight.lora_b")) {
                float[] v = t.tensor(b);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * 0.05f;
                }
                t.setTensor(b, v);
            }
            LoraTrainer.Reference ref = t.reference(e);
            for (String name : List.of("blk.0.attn_k.weight.lora_a", "blk.5.attn_v.weight.lora_a", "blk.2.ffn_gate.weight.lora_a",
                    "blk.3.ffn_up.weight.lora_b", "blk.1.attn_q.weight.lora_b")) {
                checkGradient(t, e, ref, w, name);
            }
        }
    }

    /** qwen2 (q/k/v biases, NEOX rope) and qwen3 (per-head q/k norms, head size 32 with 4 heads of a 64-wide model). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"qwen2", "qwen3"})
    void otherFamiliesMatchLlamaDecodeAndHaveCheckedGradients(String arch) {
        TestModels.assumeCpuExactness();
        int headDim = arch.equals("qwen3") ? 32 : 16;
        Path file = dev.steer.testing.TinyModels.writeDecoder(TestModels.dir().resolve("tiny-" + arch + ".gguf"), arch,
                dev.steer.testing.TinyModels.DEFAULT, headDim, 11);
        try (LlamaModel m = LlamaModel.load(file, TestModels.params());
             LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            assertEquals(arch, m.info().architecture());
            int[] tokens = m.tokenize("hello world, the model is in the steer", true, false);
            float[] served;
            try (LlamaContext ctx = LlamaContext.create(m, LlamaContext.Params.defaults().withContextSize(256).exact())) {
                Batch b = ctx.newBatch();
                for (int i = 0; i < tokens.length; i++) {
                    b.add(tokens[i], i, 0, true);
                }
                ctx.decode(b);
                served = new float[tokens.length * m.vocabSize()];
                for (int i = 0; i < tokens.length; i++) {
                    System.arraycopy(ctx.logits(i), 0, served, i * m.vocabSize(), m.vocabSize());
                }
            }
            double d = maxDiff(served, t.logits(tokens, false));
            assertTrue(d < 1e-5, arch + ": training forward vs llama_decode, max |diff| = " + d);
            LoraTrainer.Example e = new LoraTrainer.Example(m.tokenize("hello world", true, false),
                    m.tokenize(" the steer", false, false), m.tokenize(" a token", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            Random rnd = new Random(5);
            for (String b : List.of("blk.0.attn_k.weight.lora_b", "blk.1.attn_v.weight.lora_b", "blk.0.attn_q.weight.lora_b")) {
                float[] v = t.tensor(b);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * 0.05f;
                }
                t.setTensor(b, v);
            }
            LoraTrainer.Reference ref = t.reference(e);
            for (String name : List.of("blk.0.attn_k.weight.lora_a", "blk.1.attn_v.weight.lora_a", "blk.0.attn_q.weight.lora_b")) {
                checkGradient(t, e, ref, w, name);
            }
        }
    }

    /**
     * The analytic gradient against central finite differences, along g/|g| and along random directions: a check
     * along g alone passes with half of g zeroed, a random direction v sees every entry (v . g).
     */
    /** Every LoRA B of the tiny llama drawn N(0, scale²) from {@code seed}: an adapter that moves the logits. */
    static void perturbB(LoraTrainer t, int seed, float scale) {
        Random rnd = new Random(seed);
        for (String target : LoraTrainer.ALL_TARGETS) {
            for (int l = 0; l < TestModels.tinyLlama().info().layers(); l++) {
                String b = "blk." + l + "." + target + ".weight.lora_b";
                float[] v = t.tensor(b);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * scale;
                }
                t.setTensor(b, v);
            }
        }
    }

    /** log softmax of row {@code row} of [rows, vocab] logits, in double precision: the tests' reference. */
    static double[] logSoftmax(float[] logits, int row, int vocab) {
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[row * vocab + v]);
        }
        double z = 0;
        for (int v = 0; v < vocab; v++) {
            z += Math.exp(logits[row * vocab + v] - max);
        }
        double[] out = new double[vocab];
        for (int v = 0; v < vocab; v++) {
            out[v] = logits[row * vocab + v] - max - Math.log(z);
        }
        return out;
    }

    static void checkGradient(LoraTrainer t, LoraTrainer.Example e, LoraTrainer.Reference ref, LoraTrainer.Weights w, String name) {
        float[] g = t.gradient(e, ref, w, name);
        double norm = 0;
        for (float x : g) {
            norm += x * x;
        }
        assertTrue(norm > 0, name + ": non-zero gradient");
        double gn = Math.sqrt(norm);
        Random rnd = new Random(name.hashCode());
        for (int d = 0; d < 3; d++) {
            double[] v = new double[g.length];
            double vn = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] = d == 0 ? g[i] / gn : rnd.nextGaussian();
                vn += v[i] * v[i];
            }
            vn = Math.sqrt(vn);
            double analytic = 0;
            for (int i = 0; i < v.length; i++) {
                v[i] /= vn;
                analytic += v[i] * g[i];
            }
            double numeric = directional(t, e, ref, w, name, v, 0.02f);
            double err = Math.abs(numeric - analytic);
            // Random directions see about |g|/sqrt(n) of the gradient: judge them against |g| too (float rounding).
            double scale = Math.max(Math.abs(analytic), d == 0 ? 0 : 0.02 * gn);
            assertTrue(err <= 0.05 * Math.max(scale, Math.abs(numeric)) + 1e-6,
                    name + " direction " + d + ": analytic " + analytic + " vs finite difference " + numeric);
        }
    }

    /** (L(p + eps v) - L(p - eps v)) / 2 eps, the tensor restored afterwards. */
    static double directional(LoraTrainer t, LoraTrainer.Example e, LoraTrainer.Reference ref, LoraTrainer.Weights w, String name,
                              double[] v, float eps) {
        float[] p0 = t.tensor(name);
        float[] p = p0.clone();
        for (int i = 0; i < p.length; i++) {
            p[i] = p0[i] + (float) (eps * v[i]);
        }
        t.setTensor(name, p);
        double lp = t.evaluate(e, ref, w).loss();
        for (int i = 0; i < p.length; i++) {
            p[i] = p0[i] - (float) (eps * v[i]);
        }
        t.setTensor(name, p);
        double lm = t.evaluate(e, ref, w).loss();
        t.setTensor(name, p0);
        return (lp - lm) / (2 * eps);
    }

    @Test
    void gradientsMatchFiniteDifferencesOnEveryKindOfTensor() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
        try (LoraTrainer t = trainer(2)) {
            Random rnd = new Random(3);
            for (String target : LoraTrainer.ALL_TARGETS) {  // B != 0 everywhere, so that dL/dA is not zero either
                for (int l = 0; l < TestModelsShape.LAYERS; l++) {
                    String b = "blk." + l + "." + target + ".weight.lora_b";
                    float[] v = t.tensor(b);
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) rnd.nextGaussian() * 0.05f;
                    }
                    t.setTensor(b, v);
                }
            }
            LoraTrainer.Reference ref = t.reference(e);
            for (String name : List.of("blk.0.attn_k.weight.lora_a", "blk.0.attn_v.weight.lora_b", "blk.1.attn_k.weight.lora_b",
                    "blk.1.attn_v.weight.lora_a", "blk.0.attn_q.weight.lora_b", "blk.1.attn_output.weight.lora_a",
                    "blk.0.ffn_gate.weight.lora_b", "blk.1.ffn_down.weight.lora_b", "blk.1.ffn_up.weight.lora_a")) {
                checkGradient(t, e, ref, w, name);
            }
        }
    }

    /**
     * The CPU's OUT_PROD has its own kernel for results r floats wide (r = 4, 8, 16, 32: native/patches/0007), which
     * is where the backward of a rank-r adapter lands (dB and d(Ax)). A rank-(r+1) adapter whose extra row of A and
     * column of B are zero is the same function (alpha/rank kept equal), and its backward takes another kernel (r + 1
     * floats: 0015's whole vectors and single columns, or for r = 4 its one vector and a column): the two gradients
     * must agree entry by entry.
     */
    @Test
    void narrowOutProdKernelsGiveTheGeneralLoopsGradientsEntryByEntry() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
        List<String> names = List.of("blk.0.attn_q.weight", "blk.1.attn_v.weight", "blk.0.ffn_up.weight", "blk.1.ffn_down.weight");
        for (int r : new int[] {4, 8, 16, 32}) {
            try (LoraTrainer narrow = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, r, 2f * r, 1, 2);
                 LoraTrainer general = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, r + 1, 2f * (r + 1), 1, 2)) {
                Random rnd = new Random(r);
                for (String target : LoraTrainer.ALL_TARGETS) {
                    for (int l = 0; l < TestModelsShape.LAYERS; l++) {
                        String p = "blk." + l + "." + target + ".weight";
                        float[] a = narrow.tensor(p + ".lora_a"), b = narrow.tensor(p + ".lora_b");
                        for (int i = 0; i < b.length; i++) {
                            b[i] = (float) rnd.nextGaussian() * 0.05f;
                        }
                        narrow.setTensor(p + ".lora_b", b);
                        general.setTensor(p + ".lora_a", widenA(a, r));
                        general.setTensor(p + ".lora_b", widenB(b, r));
                    }
                }
                LoraTrainer.Reference ref = narrow.reference(e);
                for (String p : names) {
                    float[] ga = narrow.gradient(e, ref, w, p + ".lora_a"), gb = narrow.gradient(e, ref, w, p + ".lora_b");
                    float[] wa = general.gradient(e, ref, w, p + ".lora_a"), wb = general.gradient(e, ref, w, p + ".lora_b");
                    assertClose(ga, narrowA(wa, r), p + ".lora_a, rank " + r);
                    assertClose(gb, narrowB(wb, r), p + ".lora_b, rank " + r);
                }
            }
        }
    }

    /** A is [n_in, r] (n_in fastest): rank r+1 appends a zero row of n_in. */
    private static float[] widenA(float[] a, int r) {
        return Arrays.copyOf(a, a.length / r * (r + 1));
    }

    private static float[] narrowA(float[] a, int r) {
        return Arrays.copyOf(a, a.length / (r + 1) * r);
    }

    /** B is [r, n_out] (r fastest): rank r+1 has a zero at the end of each column of r. */
    private static float[] widenB(float[] b, int r) {
        int nOut = b.length / r;
        float[] out = new float[nOut * (r + 1)];
        for (int o = 0; o < nOut; o++) {
            System.arraycopy(b, o * r, out, o * (r + 1), r);
        }
        return out;
    }

    private static float[] narrowB(float[] b, int r) {
        int nOut = b.length / (r + 1);
        float[] out = new float[nOut * r];
        for (int o = 0; o < nOut; o++) {
            System.arraycopy(b, o * (r + 1), out, o * r, r);
        }
        return out;
    }

    /** Equal to float rounding: each entry within 1e-5 of the gradient's largest entry, and that one not zero. */
    private static void assertClose(float[] got, float[] want, String what) {
        assertEquals(want.length, got.length, what);
        double max = 0;
        for (float x : want) {
            max = Math.max(max, Math.abs(x));
        }
        assertTrue(max > 0, what + ": non-zero gradient");
        for (int i = 0; i < got.length; i++) {
            assertTrue(Math.abs(got[i] - want[i]) <= 1e-5 * max, what + " entry " + i + ": " + got[i] + " vs " + want[i]);
        }
    }

    /** A job changes the thread count between steps (JobRunner.Threads): the same step, however many threads compute it. */
    @Test
    void theThreadCountChangesHowFastNotWhatAStepComputes() {
        LoraTrainer.Example e = example();
        LoraTrainer.Optimizer o = new LoraTrainer.Optimizer(1e-2f, 0f, 1f);
        float[][] after = new float[2][];
        float[] loss = new float[2];
        for (int run = 0; run < 2; run++) {
            try (LoraTrainer t = trainer(4)) {
                LoraTrainer.Reference ref = t.reference(e);
                t.threads(run == 0 ? 1 : 3);
                loss[run] = t.step(List.of(e), List.of(ref), LoraTrainer.Weights.sftOnly(), o).loss();
                t.threads(run == 0 ? 2 : 1);
                t.step(List.of(e), List.of(ref), LoraTrainer.Weights.sftOnly(), o);
                after[run] = t.tensor("blk.0.attn_q.weight.lora_b");
            }
        }
        assertEquals(loss[0], loss[1], 1e-5);
        assertTrue(maxDiff(after[0], after[1]) < 1e-5, "B after two steps differs by " + maxDiff(after[0], after[1]));
        try (LoraTrainer t = trainer(4)) {
            assertThrows(IllegalArgumentException.class, () -> t.threads(0));
        }
    }

    @Test
    void onlyTheChosenSpanCountsInTheLoss() {
        LoraTrainer.Example e = example();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference ref = t.reference(e);
            float loss = t.evaluate(e, ref, LoraTrainer.Weights.sftOnly()).loss();
            // the same number from the full logits: mean -log p over exactly the chosen tokens
            int[] seq = concat(e.context(), e.chosen());
            float[] logits = t.logits(seq, true);
            int v = model.vocabSize();
            double nll = 0;
            for (int i = 0; i < e.chosen().length; i++) {
                int row = e.context().length - 1 + i;
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int k = 0; k < v; k++) {
                    max = Math.max(max, logits[row * v + k]);
                }
                for (int k = 0; k < v; k++) {
                    sum += Math.exp(logits[row * v + k] - max);
                }
                nll -= logits[row * v + e.chosen()[i]] - max - Math.log(sum);
            }
            assertEquals(nll / e.chosen().length, loss, 1e-4);
            // tokens of the rejected sequence (packed beside it) do not change the masked loss
            int[] other = e.rejected().clone();
            other[0] = (other[0] + 7) % v;
            var e2 = new LoraTrainer.Example(e.context(), e.chosen(), other);
            assertEquals(loss, t.evaluate(e2, t.reference(e2), LoraTrainer.Weights.sftOnly()).loss(), 1e-6);
            var e3 = new LoraTrainer.Example(e.context(), e.chosen(), new int[0]);
            assertEquals(loss, t.evaluate(e3, t.reference(e3), LoraTrainer.Weights.sftOnly()).loss(), 1e-6);
        }
    }

    /** On the tiny llama and on Gemma 3 (a sliding window of 4, shorter than the context: both masks count). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"llama", "gemma3"})
    void eachSpanIsScoredAsIfItAloneFollowedTheContext(String arch) {
        TestModels.assumeCpuExactness();
        // One graph packs the context once and both spans after it; the mask must keep the spans from seeing each
        // other. Scored alone (as a chosen span with nothing beside it), each span's log-probability is the same.
        LlamaModel m = arch.equals("llama") ? model
                : LlamaModel.load(dev.steer.testing.TinyModels.writeGemma3(TestModels.dir().resolve("tiny-gemma3-spans.gguf"), 4, 13), TestModels.params());
        try (LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 6, 2)) {
            int[] context = m.tokenize("hello world, the model is", true, false);
            int[] chosen = m.tokenize(" the steer", false, false);
            int[] longer = m.tokenize(" a token in and then some more words", false, false);
            var packed = new LoraTrainer.Example(context, chosen, longer);
            var chosenAlone = new LoraTrainer.Example(context, chosen, new int[0]);
            var rejectedAlone = new LoraTrainer.Example(context, longer, new int[0]);
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            for (int s = 0; s < 3; s++) {  // a few steps, so the adapter is not zero
                t.step(List.of(packed), List.of(t.reference(packed)), w, 1e-2f, 0f);
            }
            LoraTrainer.Reference base = t.reference(packed);
            LoraTrainer.Evaluation adapted = t.evaluate(packed, base, w);
            // Equal up to float rounding (the packed rows sum more masked-out zeros): 1e-6 relative.
            assertEquals(t.reference(chosenAlone).logpChosen(), base.logpChosen(), 1e-6 * Math.abs(base.logpChosen()) + 1e-5);
            assertEquals(t.reference(rejectedAlone).logpChosen(), base.logpRejected(), 1e-6 * Math.abs(base.logpRejected()) + 1e-5);
            float alone = t.evaluate(rejectedAlone, t.reference(rejectedAlone), LoraTrainer.Weights.sftOnly()).logpChosen();
            assertEquals(alone, adapted.logpRejected(), 1e-6 * Math.abs(alone) + 1e-5);
            float chosenScore = t.evaluate(chosenAlone, t.reference(chosenAlone), LoraTrainer.Weights.sftOnly()).logpChosen();
            assertEquals(chosenScore, adapted.logpChosen(), 1e-6 * Math.abs(chosenScore) + 1e-5);
            assertTrue(Math.abs(alone - base.logpRejected()) > 1e-3, "the adapter changed the scores: " + alone + " vs " + base.logpRejected());
        } finally {
            if (m != model) {
                m.close();
            }
        }
    }

    @Test
    void aWrittenAdapterReproducesTheTrainingGraphInServing() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        Path file = TestModels.dir().resolve("trained-adapter.gguf");
        int[] tokens = concat(e.context(), e.chosen());
        try (LoraTrainer t = trainer(5)) {
            LoraTrainer.Reference ref = t.reference(e);
            for (int i = 0; i < 5; i++) {
                t.step(List.of(e), List.of(ref), new LoraTrainer.Weights(1f, 1f, 0.5f), 1e-2f, 0f);
            }
            t.save(file);
            float[] trained = t.logits(tokens, true);
            try (LoraAdapter a = LoraAdapter.load(model, file)) {
                double d = maxDiff(trained, llamaLogits(tokens, a, 1f));
                assertTrue(d < 1e-4, "served adapter vs training graph, max |diff| = " + d);
                assertArrayEquals(llamaLogits(tokens, null, 0f), llamaLogits(tokens, a, 0f), "scale 0 is the base exactly");
                assertTrue(maxDiff(trained, t.logits(tokens, false)) > 1e-3, "training changed something");
            }
        }
    }

    @Test
    void learnsAToySteer() {
        int[] context = model.tokenize("hello world, the model is", true, false);
        int[] chosen = model.tokenize(" the steer", false, false);
        int[] rejected;
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256));
             LlamaSampler g = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            rejected = Generate.toArray(Generate.run(ctx, g, context, 0, chosen.length));  // what the model says by itself
        }
        assertTrue(!Arrays.equals(rejected, chosen));
        LoraTrainer.Example e = new LoraTrainer.Example(context, chosen, rejected);
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
        Path file = TestModels.dir().resolve("toy-steer.gguf");
        try (LoraTrainer t = trainer(6)) {
            LoraTrainer.Reference ref = t.reference(e);
            LoraTrainer.Evaluation before = t.evaluate(e, ref, w);
            for (int i = 0; i < 100; i++) {
                t.step(List.of(e), List.of(ref), w, 1e-3f, 0f);
            }
            LoraTrainer.Evaluation after = t.evaluate(e, ref, w);
            assertTrue(after.loss() < before.loss() * 0.5, "loss " + before.loss() + " -> " + after.loss());
            float marginBefore = before.logpChosen() - before.logpRejected();
            float marginAfter = after.logpChosen() - after.logpRejected();
            assertTrue(marginAfter > marginBefore + 1, "chosen-vs-rejected margin " + marginBefore + " -> " + marginAfter);
            t.save(file);
        }
        try (LoraAdapter a = LoraAdapter.load(model, file);
             LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256));
             LlamaSampler g = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            ctx.setAdapters(List.of(new LlamaContext.AdapterScale(a, 1f)));
            int[] out = Generate.toArray(Generate.run(ctx, g, context, 0, chosen.length));
            assertArrayEquals(chosen, out, "after training, greedy decoding at the fork produces the correction");
            ctx.setAdapters(List.of());
        }
    }

    /**
     * A step's gradient is the mean of its examples' own gradients, entry by entry (each example's backward adds
     * 1 / batch size of its gradient into the accumulators). Examples of different lengths and shapes: a single steer
     * with a rejected span, one without (its preference term switched off), a packed answer with keep rows under the
     * KL term. The batch's gradient is read off one Adam step at lr = eps = 1, where each entry of B (zero before)
     * becomes -g / (|g| + 1), so g = -b / (1 - |b|).
     */
    @Test
    void aStepsGradientIsTheMeanOfItsExamplesGradients() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example steer = example();
        LoraTrainer.Example plain = new LoraTrainer.Example(model.tokenize("the model is", true, false), model.tokenize(" in the", false, false), new int[0]);
        int[] answer = model.tokenize("hello world, the model is in the steer and the token", true, false);
        byte[] roles = new byte[answer.length];
        for (int i = 3; i < answer.length; i++) {
            roles[i] = i >= 6 && i < 8 ? LoraTrainer.LEARN : LoraTrainer.KEEP;
        }
        LoraTrainer.Example kept = new LoraTrainer.Example(answer, roles, -1, new int[0]);
        List<LoraTrainer.Example> batch = List.of(steer, plain, kept);
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f, 2f);
        List<String> names = List.of("blk.0.attn_q.weight.lora_b", "blk.0.attn_v.weight.lora_b", "blk.1.ffn_up.weight.lora_b",
                "blk.1.attn_output.weight.lora_b");
        try (LoraTrainer single = trainer(5); LoraTrainer stepped = trainer(5)) {
            List<LoraTrainer.Reference> refs = batch.stream().map(single::reference).toList();
            double[][] mean = new double[names.size()][];
            for (int n = 0; n < names.size(); n++) {
                for (int i = 0; i < batch.size(); i++) {
                    float[] g = single.gradient(batch.get(i), refs.get(i), w, names.get(n));
                    if (mean[n] == null) {
                        mean[n] = new double[g.length];
                    }
                    for (int k = 0; k < g.length; k++) {
                        mean[n][k] += g[k] / (double) batch.size();
                    }
                }
            }
            stepped.step(batch, refs, w, new LoraTrainer.Optimizer(1f, 0f, 0f, 1f));
            for (int n = 0; n < names.size(); n++) {
                float[] b = stepped.tensor(names.get(n));
                double scale = 0;
                for (double x : mean[n]) {
                    scale = Math.max(scale, Math.abs(x));
                }
                assertTrue(scale > 0, names.get(n) + ": a gradient to compare");
                for (int k = 0; k < b.length; k++) {
                    double g = -b[k] / (1 - Math.abs(b[k]));
                    assertEquals(mean[n][k], g, 1e-4 * scale + 1e-4 * Math.abs(mean[n][k]), names.get(n) + " entry " + k);
                }
            }
        }
    }

    /**
     * Adam's first step, entry by entry: m = g and v = g^2 after bias correction, so each entry moves by
     * -lr * g / (|g| + eps). With the usual eps every entry with any gradient moves by about lr (sign descent); with
     * an eps above the gradients' scale, each moves in proportion to its own gradient (adam_epsilon, docs/training.md).
     */
    @Test
    void adamsFirstStepMovesEachEntryByLrTimesGOverAbsGPlusEpsilon() {
        LoraTrainer.Example e = example();
        LoraTrainer.Reference none = new LoraTrainer.Reference(0, 0);
        LoraTrainer.Weights sft = LoraTrainer.Weights.sftOnly();
        String name = "blk.1.ffn_down.weight.lora_b";  // B: the only tensor with a gradient while B = 0
        float lr = 1e-3f;
        for (float eps : new float[] {1e-8f, 1f}) {
            try (LoraTrainer t = trainer(3)) {
                float[] g = t.gradient(e, none, sft, name);
                float[] before = t.tensor(name);
                t.step(List.of(e), List.of(none), sft, new LoraTrainer.Optimizer(lr, 0f, 0f, eps));
                float[] after = t.tensor(name);
                double gMax = 0;
                int moved = 0;
                for (int i = 0; i < g.length; i++) {
                    double expected = -lr * g[i] / (Math.abs(g[i]) + eps);
                    assertEquals(expected, after[i] - before[i], 1e-6 * lr + 1e-3 * Math.abs(expected), "entry " + i + " at eps " + eps);
                    gMax = Math.max(gMax, Math.abs(g[i]));
                    moved += Math.abs(after[i] - before[i]) > 0.5 * lr ? 1 : 0;
                }
                assertTrue(gMax > 0 && gMax < 1, "the tiny model's gradients are below eps = 1: max |g| " + gMax);
                if (eps < 1e-6f) {
                    assertTrue(moved > g.length / 2, "sign descent: most entries move by ~lr, " + moved + " of " + g.length);
                } else {
                    assertEquals(0, moved, "eps above every gradient: no entry moves by lr/2 or more");
                }
            }
        }
    }

    @Test
    void clippingScalesEachStepsGradientDownToTheBound() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example a = example();
        LoraTrainer.Example b = new LoraTrainer.Example(a.context(), model.tokenize(" other words", false, false), new int[0]);
        List<LoraTrainer.Example> steps = List.of(a, b, a);
        LoraTrainer.Reference none = new LoraTrainer.Reference(0, 0);
        LoraTrainer.Weights sft = LoraTrainer.Weights.sftOnly();
        List<String> names = List.of("blk.0.attn_k.weight.lora_b", "blk.0.attn_v.weight.lora_b", "blk.1.ffn_down.weight.lora_b");
        float bound = 1e-3f;
        float[] norms = new float[steps.size()];
        float[][] clipped = new float[names.size()][], rescaled = new float[names.size()][], unclipped = new float[names.size()][];
        try (LoraTrainer t = trainer(8)) {
            // The reported norm is the global norm of the batch's gradient, every LoRA tensor included.
            double squares = 0;
            for (int layer = 0; layer < 2; layer++) {
                for (String target : LoraTrainer.ALL_TARGETS) {
                    for (String ab : List.of("lora_a", "lora_b")) {
                        for (float g : t.gradient(a, none, sft, "blk." + layer + "." + target + ".weight." + ab)) {
                            squares += (double) g * g;
                        }
                    }
                }
            }
            for (int i = 0; i < steps.size(); i++) {
                norms[i] = t.step(List.of(steps.get(i)), List.of(none), sft, new LoraTrainer.Optimizer(1e-2f, 0f, bound)).gradNorm();
                assertTrue(norms[i] > 10 * bound, "the bound clips: norm " + norms[i]);
            }
            assertEquals(Math.sqrt(squares), norms[0], 1e-4 * norms[0], "norm of the first step's gradient");
            for (int i = 0; i < names.size(); i++) {
                clipped[i] = t.tensor(names.get(i));
            }
        }
        // Clipping is scaling each step's gradient by bound / norm, so it equals training without clipping on a loss
        // scaled by that factor (the loss is linear in its weight), step by step.
        try (LoraTrainer t = trainer(8)) {
            for (int i = 0; i < steps.size(); i++) {
                t.step(List.of(steps.get(i)), List.of(none), new LoraTrainer.Weights(bound / norms[i], 0f, 0.1f), new LoraTrainer.Optimizer(1e-2f, 0f, 0f));
            }
            for (int i = 0; i < names.size(); i++) {
                rescaled[i] = t.tensor(names.get(i));
            }
        }
        try (LoraTrainer t = trainer(8)) {
            for (LoraTrainer.Example e : steps) {
                t.step(List.of(e), List.of(none), sft, new LoraTrainer.Optimizer(1e-2f, 0f, 0f));
            }
            for (int i = 0; i < names.size(); i++) {
                unclipped[i] = t.tensor(names.get(i));
            }
        }
        double same = 0, different = 0;
        for (int i = 0; i < names.size(); i++) {
            same = Math.max(same, maxDiff(clipped[i], rescaled[i]));
            different = Math.max(different, maxDiff(clipped[i], unclipped[i]));
        }
        System.err.printf("clipping: step norms %s; clipped vs rescaled loss max |diff| %.2e, vs unclipped %.2e%n",
                Arrays.toString(norms), same, different);
        assertTrue(same < 1e-6, "clipped training equals the rescaled loss's, max |diff| = " + same);
        assertTrue(different > 1e-5, "and differs from unclipped training, max |diff| = " + different);
    }

    @Test
    void badInputsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> LoraTrainer.create(model, List.of("attn_z"), 4, 8f, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 0, 8f, 1, 1));
        try (LoraTrainer t = trainer(7)) {
            var bad = new LoraTrainer.Example(new int[] {1, 99999}, new int[] {5}, new int[0]);
            assertThrows(IllegalArgumentException.class, () -> t.reference(bad));
            assertThrows(IllegalArgumentException.class, () -> t.reference(new LoraTrainer.Example(new int[] {1}, new int[0], new int[0])));
            assertThrows(IllegalArgumentException.class, () -> t.tensor("blk.0.nothing.lora_a"));
            assertThrows(IllegalArgumentException.class, () -> t.setTensor("blk.0.attn_q.weight.lora_a", new float[3]));
        }
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The tiny model's layer count (TinyModels.DEFAULT). */
    private static final class TestModelsShape {
        static final int LAYERS = dev.steer.testing.TinyModels.DEFAULT.layers();
    }
}
