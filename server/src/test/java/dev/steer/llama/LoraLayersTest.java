package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * LoRA on the last blocks only ({@code LoraTrainer.create(..., layers, ...)}): the blocks below are the base model's,
 * so the trainer computes their output once per example and starts every later graph from it. What must hold: the
 * loss and argmax from that given input are those of the whole forward pass (which matches llama.cpp serving), the
 * gradients are the loss's (finite differences, entry by entry too), checkpointing gives the same gradients, and the
 * saved adapter, holding the last blocks' tensors only, serves as it trained. A tiny llama of four blocks, LoRA on two.
 */
class LoraLayersTest {
    private static final int LAYERS = 4, ADAPTED = 2;
    private static LlamaModel model;

    @BeforeAll
    static void load() {
        TinyModels.Shape s = TinyModels.DEFAULT;
        Path file = TinyModels.writeLlama(TestModels.dir().resolve("tiny-llama-4-blocks.gguf"),
                new TinyModels.Shape(s.embd(), LAYERS, s.heads(), s.kvHeads(), s.ff(), s.contextLength()), 21);
        model = LlamaModel.load(file, TestModels.params());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static LoraTrainer trainer(int seed) {
        return LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, ADAPTED, seed, 2);
    }

    private static LoraTrainer.Example example() {
        int[] context = model.tokenize("hello world, the model is", true, false);
        return new LoraTrainer.Example(context, model.tokenize(" the steer", false, false), model.tokenize(" a token in", false, false));
    }

    /** Every LoRA B of the adapted blocks drawn N(0, 0.05²): an adapter that moves the logits (B = 0 would not). */
    private static void perturbB(LoraTrainer t, int seed) {
        Random rnd = new Random(seed);
        for (String target : LoraTrainer.ALL_TARGETS) {
            for (int l = LAYERS - ADAPTED; l < LAYERS; l++) {
                String b = "blk." + l + "." + target + ".weight.lora_b";
                float[] v = t.tensor(b);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * 0.05f;
                }
                t.setTensor(b, v);
            }
        }
    }

    @Test
    void onlyTheLastBlocksCarryLoraTensors() {
        try (LoraTrainer t = trainer(1)) {
            for (String target : LoraTrainer.ALL_TARGETS) {
                for (int l = 0; l < LAYERS; l++) {
                    String name = "blk." + l + "." + target + ".weight.lora_a";
                    if (l < LAYERS - ADAPTED) {
                        assertThrows(IllegalArgumentException.class, () -> t.tensor(name), name);
                    } else {
                        assertTrue(t.tensor(name).length > 0, name);
                    }
                }
            }
        }
        // More blocks than the model has: every block; a negative count is refused.
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 100, 1, 2)) {
            assertTrue(t.tensor("blk.0.attn_q.weight.lora_a").length > 0);
        }
        assertThrows(IllegalArgumentException.class, () -> LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, -1, 1, 2));
    }

    @Test
    void theLossAndArgmaxFromTheKeptLowerBlocksAreTheWholeForwardPasses() {
        LoraTrainer.Example e = example();
        try (LoraTrainer t = trainer(2)) {
            perturbB(t, 3);
            // (the reference computes and keeps the lower blocks' output; the evaluation reads it back)
            float first = t.evaluate(e, t.reference(e), LoraTrainer.Weights.sftOnly()).loss();
            // The whole forward pass (embeddings, every block, LoRA on the last two): its cross-entropy on the chosen span.
            int[] tokens = LoraTrainerTest.concat(e.context(), e.chosen());
            float[] logits = t.logits(tokens, true);
            int v = model.vocabSize();
            int[] argmax = new int[e.chosen().length];
            for (int i = 0; i < e.chosen().length; i++) {
                int row = e.context().length - 1 + i;
                for (int k = 1; k < v; k++) {
                    argmax[i] = logits[row * v + k] > logits[row * v + argmax[i]] ? k : argmax[i];
                }
            }
            assertEquals(meanNll(logits, v, e.context().length, e.chosen()), first, 1e-4);
            assertEquals(java.util.Arrays.toString(argmax), java.util.Arrays.toString(t.predict(e, true).learn()));
            float[] base = t.logits(tokens, false);
            double moved = 0;
            for (int i = 0; i < logits.length; i++) {
                moved = Math.max(moved, Math.abs(logits[i] - base[i]));
            }
            assertTrue(moved > 1e-3, "the adapter moves the logits: " + moved);
        }
    }

    /**
     * Another trainer's kept input (what a server keeps between jobs, train/References) stands for this trainer's own
     * pass over the lower blocks: given it, the trainer computes none (lowerPasses), and its reference, loss and step
     * are those of a trainer that computed the blocks itself, to the last bit. An input of another size is refused;
     * with every block adapted there is nothing below to keep.
     */
    @Test
    void aKeptInputFromAnotherTrainerStandsForTheLowerBlocksPass() {
        LoraTrainer.Example e = example();
        float[] input;
        try (LoraTrainer first = trainer(4)) {
            input = first.keptInput(e);
            assertEquals(1, first.lowerPasses());
            assertEquals(LoraLayersTest.embd() * e.tokens().length + (long) LoraLayersTest.embd() * e.rejected().length, input.length);
            first.reference(e);
            first.keptInput(e);
            assertEquals(1, first.lowerPasses(), "kept: computed once");
        }
        try (LoraTrainer given = trainer(5); LoraTrainer own = trainer(5)) {
            given.keepInput(e, input);
            LoraTrainer.Reference ref = given.reference(e), ownRef = own.reference(e);
            assertEquals(0, given.lowerPasses(), "given the input, the trainer computes no lower block");
            assertEquals(1, own.lowerPasses());
            assertEquals(ownRef.logpChosen(), ref.logpChosen());
            assertEquals(ownRef.logpRejected(), ref.logpRejected());
            assertEquals(java.util.Arrays.toString(ownRef.keepProbs()), java.util.Arrays.toString(ref.keepProbs()));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.1f, 1f);
            LoraTrainer.StepResult a = given.step(List.of(e), List.of(ref), w, new LoraTrainer.Optimizer(1e-3f, 0f, 1f, LoraTrainer.Optimizer.ADAM_EPSILON));
            LoraTrainer.StepResult b = own.step(List.of(e), List.of(ownRef), w, new LoraTrainer.Optimizer(1e-3f, 0f, 1f, LoraTrainer.Optimizer.ADAM_EPSILON));
            assertEquals(b.loss(), a.loss());
            assertEquals(b.gradNorm(), a.gradNorm());
            assertEquals(java.util.Arrays.toString(own.snapshot()), java.util.Arrays.toString(given.snapshot()), "the same step, bit for bit");
            assertEquals(0, given.lowerPasses());
            assertThrows(IllegalArgumentException.class, () -> given.keepInput(example2(), input), "another example's size");
        }
        try (LoraTrainer every = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, LoraTrainer.ALL_LAYERS, 1, 2)) {
            assertEquals(0, every.keptInput(e).length);
            assertThrows(IllegalArgumentException.class, () -> every.keepInput(e, input));
        }
    }

    private static int embd() {
        return TinyModels.DEFAULT.embd();
    }

    private static LoraTrainer.Example example2() {
        return new LoraTrainer.Example(model.tokenize("hello", true, false), model.tokenize(" the steer", false, false), new int[0]);
    }

    /**
     * The kept input belongs to a packing, not to a token sequence: [context, a | b c] (b c the rejected branch, at
     * a's position, not seeing a) and [context, a b c] hold the same tokens in the same order. Reading the first's
     * kept input for the second would score c after a b it cannot see.
     */
    @Test
    void theSameTokensAtOtherPositionsAndBranchesKeepTheirOwnInput() {
        int[] context = model.tokenize("hello world, the model is", true, false);
        int[] abc = java.util.Arrays.copyOf(model.tokenize(" the steer in", false, false), 3);
        LoraTrainer.Example branched = new LoraTrainer.Example(context, new int[] {abc[0]}, new int[] {abc[1], abc[2]});
        LoraTrainer.Example straight = new LoraTrainer.Example(context, abc, new int[0]);  // (no rejected span: no fork)
        assertEquals(java.util.Arrays.toString(LoraTrainerTest.concat(context, abc)),
                java.util.Arrays.toString(LoraTrainerTest.concat(branched.tokens(), branched.rejected())), "the same tokens, packed");
        try (LoraTrainer t = trainer(10)) {
            perturbB(t, 11);
            t.evaluate(branched, t.reference(branched), LoraTrainer.Weights.sftOnly());  // keeps the branched packing's input first
            float loss = t.evaluate(straight, t.reference(straight), LoraTrainer.Weights.sftOnly()).loss();
            float[] logits = t.logits(LoraTrainerTest.concat(context, abc), true);
            // On a GPU the kept-input graph and the whole forward pass run different kernels: 5.7e-4 apart of 12.15
            // there (docs/gpu.md), hence 2e-3. (How far apart the fault this test guards against, the other
            // packing's input, puts them was not measured on a GPU.)
            assertEquals(meanNll(logits, model.vocabSize(), context.length, abc), loss, TestModels.onGpu() ? 2e-3 : 1e-4);
        }
    }

    @Test
    void gradientsOfTheAdaptedBlocksMatchFiniteDifferences() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
        try (LoraTrainer t = trainer(4)) {
            perturbB(t, 5);
            LoraTrainer.Reference ref = t.reference(e);
            for (String name : List.of("blk.2.attn_k.weight.lora_a", "blk.2.attn_v.weight.lora_b", "blk.3.attn_q.weight.lora_a",
                    "blk.3.ffn_down.weight.lora_b", "blk.2.ffn_up.weight.lora_a")) {
                LoraTrainerTest.checkGradient(t, e, ref, w, name);
            }
            // Entry by entry on one tensor of the first adapted block (its gradient flows through the block above).
            String name = "blk.2.attn_q.weight.lora_b";
            float[] g = t.gradient(e, ref, w, name);
            double largest = 0;
            for (float x : g) {
                largest = Math.max(largest, Math.abs(x));
            }
            for (int i = 0; i < 24; i++) {
                double[] unit = new double[g.length];
                unit[i] = 1;
                double numeric = LoraTrainerTest.directional(t, e, ref, w, name, unit, 0.01f);
                assertEquals(g[i], numeric, 0.03 * largest + 1e-5, name + " entry " + i);
            }
        }
    }

    @Test
    void checkpointingGivesTheSameGradients() {
        LoraTrainer.Example e = example();
        LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
        try (LoraTrainer t = trainer(6)) {
            perturbB(t, 7);
            LoraTrainer.Reference ref = t.reference(e);
            for (String name : List.of("blk.2.attn_q.weight.lora_a", "blk.3.ffn_gate.weight.lora_b")) {
                float[] plain = t.gradient(e, ref, w, name);
                for (int runs : new int[] {0, 2}) {  // every block; two runs, the first from the kept input
                    if (runs == 0) {
                        t.checkpointing(true);
                    } else {
                        t.checkpointing(runs);
                    }
                    float[] checkpointed = t.gradient(e, ref, w, name);
                    t.checkpointing(false);
                    for (int i = 0; i < plain.length; i++) {
                        assertEquals(plain[i], checkpointed[i], 1e-5 + 1e-4 * Math.abs(plain[i]), name + " entry " + i + ", runs " + runs);
                    }
                }
            }
        }
    }

    @Test
    void aSavedAdapterHoldsTheLastBlocksAndServesAsItTrained() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = example();
        Path file = TestModels.dir().resolve("trained-last-blocks.gguf");
        int[] tokens = LoraTrainerTest.concat(e.context(), e.chosen());
        try (LoraTrainer t = trainer(8)) {
            LoraTrainer.Reference ref = t.reference(e);
            for (int i = 0; i < 5; i++) {
                t.step(List.of(e), List.of(ref), new LoraTrainer.Weights(1f, 1f, 0.5f), 1e-2f, 0f);
            }
            assertServedAsTrained(model, t, file, tokens);
        }
    }

    /**
     * Gemma 3 (six blocks, a sliding window of 4 on all but the last, so both masks count on both sides of the cut),
     * LoRA on the last three: the loss from the kept input is the whole forward pass's, and llama.cpp serves the saved
     * adapter as it trained.
     */
    @Test
    void onGemma3TheKeptInputGivesTheWholeForwardPasssLossAndTheAdapterServesAsItTrained() {
        TestModels.assumeCpuExactness();
        Path file = TestModels.dir().resolve("tiny-gemma3-last-blocks.gguf");
        try (LlamaModel g = LlamaModel.load(TinyModels.writeGemma3(TestModels.dir().resolve("tiny-gemma3-layers.gguf"), 4, 17), TestModels.params());
             LoraTrainer t = LoraTrainer.create(g, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 9, 2)) {
            assertThrows(IllegalArgumentException.class, () -> t.tensor("blk.2.attn_q.weight.lora_a"));
            int[] context = g.tokenize("hello world, the model is a small one and", true, false);
            int[] chosen = g.tokenize(" the steer", false, false);
            LoraTrainer.Example e = new LoraTrainer.Example(context, chosen, new int[0]);  // (no rejected span: no fork)
            LoraTrainer.Reference ref = t.reference(e);
            for (int i = 0; i < 4; i++) {
                t.step(List.of(e), List.of(ref), LoraTrainer.Weights.sftOnly(), 1e-2f, 0f);
            }
            int[] tokens = LoraTrainerTest.concat(context, chosen);
            float[] logits = t.logits(tokens, true);
            assertEquals(meanNll(logits, g.vocabSize(), context.length, chosen), t.evaluate(e, ref, LoraTrainer.Weights.sftOnly()).loss(), 1e-4);
            assertServedAsTrained(g, t, file, tokens);
        }
    }

    /** The mean cross-entropy of {@code span} after {@code contextLength} tokens, from whole-forward logits [rows, vocab]. */
    private static double meanNll(float[] logits, int vocab, int contextLength, int[] span) {
        double nll = 0;
        for (int i = 0; i < span.length; i++) {
            nll -= LoraTrainerTest.logSoftmax(logits, contextLength - 1 + i, vocab)[span[i]];
        }
        return nll / span.length;
    }

    /**
     * Saves t's adapter to file and has llama.cpp decode tokens with it: every row's logits are the training graph's
     * (the whole forward pass, {@code t.logits}) within 1e-4, and training moved them.
     */
    private static void assertServedAsTrained(LlamaModel m, LoraTrainer t, Path file, int[] tokens) {
        t.save(file);
        float[] trained = t.logits(tokens, true);
        float[] base = t.logits(tokens, false);
        try (LoraAdapter a = LoraAdapter.load(m, file);
             LlamaContext ctx = LlamaContext.create(m, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            ctx.setAdapters(List.of(new LlamaContext.AdapterScale(a, 1f)));
            Batch b = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                b.add(tokens[i], i, 0, true);
            }
            ctx.decode(b);
            int v = m.vocabSize();
            double served = 0, moved = 0;
            for (int i = 0; i < tokens.length; i++) {
                float[] row = ctx.logits(i);
                for (int k = 0; k < v; k++) {
                    served = Math.max(served, Math.abs(row[k] - trained[i * v + k]));
                    moved = Math.max(moved, Math.abs(base[i * v + k] - trained[i * v + k]));
                }
            }
            assertTrue(served < 1e-4, "served adapter vs training graph, max |diff| = " + served);
            assertTrue(moved > 1e-3, "training changed the logits");
        }
    }
}
