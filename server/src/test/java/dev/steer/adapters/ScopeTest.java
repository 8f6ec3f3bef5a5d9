package dev.steer.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LayerProbe;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.GgufWriter;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A scope routes a prompt to the adapter when it is nearer its steered prompts than its unsteered ones, comparing the
 * prompts' last tokens' summed input embeddings, which are the rows of the model's token embedding table.
 */
class ScopeTest {
    @TempDir
    Path dir;

    private final LlamaModel model = TestModels.tinyLlama();
    /** Layer 0 routes by token embeddings: no probe is asked for. */
    private static final IntFunction<LayerProbe> NO_PROBES = layer -> {
        throw new AssertionError("layer 0 needs no forward pass");
    };

    /** TestModels' tiny llama: seed 42, token_embd first, N(0, 0.5^2) (TinyModels.writeDecoder). */
    private static float[] row(int token) {
        int e = TinyModels.DEFAULT.embd();
        Random rnd = new Random(42);
        float[] row = new float[e];
        for (int i = 0; i < (token + 1) * e; i++) {
            float x = (float) rnd.nextGaussian() * 0.5f;
            if (i >= token * e) {
                row[i - token * e] = x;
            }
        }
        return row;
    }

    @Test
    void theEmbeddingSumAddsTheTablesRowsInTheTokensOrder() {
        int a = 300, b = 7;
        assertArrayEquals(row(a), model.embeddingSum(new int[] {a}));
        float[] want = new float[TinyModels.DEFAULT.embd()];
        for (int t : new int[] {a, b, a}) {
            float[] r = row(t);
            for (int i = 0; i < want.length; i++) {
                want[i] += r[i];
            }
        }
        assertArrayEquals(want, model.embeddingSum(new int[] {a, b, a}), "exactly: the same float additions");
        assertThrows(IllegalArgumentException.class, () -> model.embeddingSum(new int[] {model.vocabSize()}));
    }

    @Test
    void aQuantizedTableIsReadAsItsValues() {
        // the same model with Q8_0 weights, and an F32 one holding exactly the Q8_0 values: the same sums
        Path q8 = TinyModels.writeDecoder(dir.resolve("q8.gguf"), "llama", TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42,
                GgufWriter.WeightType.Q8_0, false);
        Path rounded = TinyModels.writeDecoder(dir.resolve("rounded.gguf"), "llama", TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42,
                GgufWriter.WeightType.Q8_0, true);
        try (LlamaModel quantized = LlamaModel.load(q8, TestModels.params()); LlamaModel f32 = LlamaModel.load(rounded, TestModels.params())) {
            int[] tokens = {300, 7, 12, 300};
            float[] got = quantized.embeddingSum(tokens);
            assertArrayEquals(f32.embeddingSum(tokens), got);
            assertFalse(java.util.Arrays.equals(got, model.embeddingSum(tokens)), "Q8_0 rounds the F32 model's values");
        }
    }

    /**
     * A model whose output layer reuses the embedding table (as SmolLM2's and Gemma 3's do), with Q4_0 weights and CPU
     * repacking: llama.cpp keeps a second, repacked copy of that table for the output layer, under the same name, whose
     * bytes are not rows and cannot be read back (reading it crashed the process): the sums are the input table's.
     */
    @Test
    void aTiedTableWithARepackedOutputCopyIsReadFromTheInputLayer() {
        Path q4 = TinyModels.writeDecoder(dir.resolve("tied-q4_0.gguf"), "llama", TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42,
                GgufWriter.WeightType.Q4_0, false, true);
        Path rounded = TinyModels.writeDecoder(dir.resolve("tied-rounded.gguf"), "llama", TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42,
                GgufWriter.WeightType.Q4_0, true, true);
        try (LlamaModel repacked = LlamaModel.load(q4, new LlamaModel.Params(0, true, true));
             LlamaModel f32 = LlamaModel.load(rounded, TestModels.params())) {
            int[] tokens = {300, 7, 12, 300};
            assertArrayEquals(f32.embeddingSum(tokens), repacked.embeddingSum(tokens));
        }
    }

    @Test
    void aPromptGoesToTheAdapterWhenItIsNearerTheSteeredPrompts() {
        int[] steered = model.tokenize("hello world, the steer model", true, true);
        int[] other = model.tokenize("in and of it: token assistant", true, true);
        Scope.Router r = new Scope(List.of(steered), List.of(other), 0, 0).router(model, NO_PROBES);
        assertTrue(r.serves(steered));
        assertFalse(r.serves(other));
        assertTrue(new Scope(List.of(steered), List.of(other), 3, 0).router(model, NO_PROBES).serves(other),
                "a margin leans towards the adapter (cosines lie in [-1, 1])");
        // only the last TOKENS tokens stand for a prompt: whatever comes before them changes nothing
        int[] longSteered = repeat(steered, Scope.TOKENS);
        int[] longOther = repeat(other, Scope.TOKENS);
        Scope.Router tail = new Scope(List.of(longSteered), List.of(longOther), 0, 0).router(model, NO_PROBES);
        assertTrue(tail.serves(concat(longOther, longSteered)));
        assertFalse(tail.serves(concat(longSteered, longOther)));
    }

    /**
     * One unsteered prompt of the steered prompts' kind does not pull their kind to the base: the three nearest on each
     * side decide (here three steered prompts of the kind against one unsteered prompt of it and two of another).
     */
    @Test
    void theThreeNearestPromptsOnEachSideDecide() {
        int[] kind = {300, 301, 302, 303, 304, 305, 306, 307, 308, 309};
        int[] other = {200, 201, 202, 203, 204, 205, 206, 207, 208, 209};
        Scope.Router r = new Scope(List.of(plus(kind, 10), plus(kind, 11), plus(kind, 12)),
                List.of(plus(kind, 13), plus(other, 14), plus(other, 15)), 0, 0).router(model, NO_PROBES);
        assertTrue(r.serves(plus(kind, 13)), "even the unsteered prompt of the kind itself");
        assertTrue(r.serves(plus(kind, 16)));
        assertFalse(r.serves(plus(other, 16)));
    }

    private static int[] plus(int[] tokens, int token) {
        int[] out = java.util.Arrays.copyOf(tokens, tokens.length + 1);
        out[tokens.length] = token;
        return out;
    }

    @Test
    void aScopeKeepsItsPromptsThroughJson() {
        Scope s = new Scope(List.of(new int[] {1, 2, 3}, new int[] {4}), List.of(new int[] {5, 6}), 0.05, 7);
        Scope back = Scope.fromJson(s.toJson());
        assertEquals(2, back.steered().size());
        assertArrayEquals(new int[] {1, 2, 3}, back.steered().get(0));
        assertArrayEquals(new int[] {4}, back.steered().get(1));
        assertArrayEquals(new int[] {5, 6}, back.unsteered().get(0));
        assertEquals(0.05, back.margin());
        assertEquals(7, back.layer());
        assertEquals(0, Scope.fromJson("{\"steered\": [[1]], \"unsteered\": [[2]], \"margin\": 0}").layer(),
                "a scope stored before it named a layer: token embeddings");
        assertThrows(IllegalArgumentException.class, () -> new Scope(List.of(new int[] {1}), List.of(new int[] {2}), 0, -1));
        assertThrows(IllegalArgumentException.class, () -> new Scope(List.of(), List.of(new int[] {1}), 0, 0));
    }

    private static int[] repeat(int[] p, int atLeast) {
        int[] out = new int[((atLeast + p.length - 1) / p.length) * p.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = p[i % p.length];
        }
        return out;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
