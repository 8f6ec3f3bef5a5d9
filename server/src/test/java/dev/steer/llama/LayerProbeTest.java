package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.steer.testing.GgufWriter;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A layer probe reads the hidden state entering a block. The reference: a model of two blocks and the same model cut
 * after its first block (same seed, same draw order: the token embeddings, then block 0; the LM head tied to the
 * embeddings, the output norm all ones). What enters block 1 of the first is then what leaves block 0 of the second,
 * whose logits are that state RMS-normed times the embedding table: written out here, row by row, from the probe's
 * numbers, for every position (a position's state from the means of two prefixes: attention is causal).
 */
class LayerProbeTest {
    @TempDir
    Path dir;

    @Test
    void theInputOfBlockOneIsWhatTheOneBlockModelPutsThroughItsHead() {
        TinyModels.Shape two = TinyModels.DEFAULT;
        TinyModels.Shape one = new TinyModels.Shape(two.embd(), 1, two.heads(), two.kvHeads(), two.ff(), two.contextLength());
        Path a = TinyModels.writeDecoder(dir.resolve("two.gguf"), "llama", two, two.headDim(), 5, GgufWriter.WeightType.F32, false, true);
        Path b = TinyModels.writeDecoder(dir.resolve("one.gguf"), "llama", one, one.headDim(), 5, GgufWriter.WeightType.F32, false, true);
        int[] tokens = {1, 300, 7, 52, 199, 23};
        try (LlamaModel twoBlocks = LlamaModel.load(a, LlamaModel.Params.defaults());
             LlamaModel oneBlock = LlamaModel.load(b, LlamaModel.Params.defaults());
             LayerProbe probe = LayerProbe.create(twoBlocks, 1, 16, 2);
             LlamaContext ctx = LlamaContext.create(oneBlock, LlamaContext.Params.defaults().withContextSize(64).withThreads(2))) {
            int n = twoBlocks.vocabSize(), e = two.embd();
            float[][] table = new float[n][];
            for (int t = 0; t < n; t++) {
                table[t] = twoBlocks.embeddingSum(new int[] {t});
            }
            Batch batch = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                batch.add(tokens[i], i, 0, true);
            }
            ctx.decode(batch);
            float[] before = new float[e];
            for (int k = 0; k < tokens.length; k++) {
                float[] mean = probe.meanInput(java.util.Arrays.copyOf(tokens, k + 1));
                float[] h = new float[e];  // position k's state: (k+1) * mean(0..k) - k * mean(0..k-1)
                double ss = 0;
                for (int i = 0; i < e; i++) {
                    h[i] = (k + 1) * mean[i] - k * before[i];
                    ss += (double) h[i] * h[i];
                }
                before = mean;
                double inv = 1 / Math.sqrt(ss / e + 1e-5);  // the output norm (weights all ones, eps 1e-5)
                float[] want = new float[n];
                double scale = 0;
                for (int t = 0; t < n; t++) {
                    double dot = 0;
                    for (int i = 0; i < e; i++) {
                        dot += table[t][i] * h[i] * inv;
                    }
                    want[t] = (float) dot;
                    scale = Math.max(scale, Math.abs(dot));
                }
                assertArrayEquals(want, ctx.logits(k), (float) (1e-4 * scale), "position " + k);
            }
        }
    }

    @Test
    void aProbeRefusesWhatItCannotRead() {
        Path a = TinyModels.writeLlama(dir.resolve("two.gguf"), TinyModels.DEFAULT, 5);
        try (LlamaModel model = LlamaModel.load(a, LlamaModel.Params.defaults())) {
            assertThrows(IllegalArgumentException.class, () -> LayerProbe.create(model, 0, 16, 1), "block 0's input: the embeddings");
            assertThrows(IllegalArgumentException.class, () -> LayerProbe.create(model, 2, 16, 1), "past the last block");
            try (LayerProbe probe = LayerProbe.create(model, 1, 4, 1); LayerProbe fresh = LayerProbe.create(model, 1, 4, 1)) {
                assertThrows(IllegalArgumentException.class, () -> probe.meanInput(new int[] {1, 2, 3, 4, 5}), "longer than it was made for");
                assertThrows(IllegalArgumentException.class, () -> probe.meanInput(new int[0]));
                assertThrows(IllegalArgumentException.class, () -> probe.meanInput(new int[] {model.vocabSize()}));
                probe.meanInput(new int[] {9, 8, 7, 6});
                float[] after = probe.meanInput(new int[] {1, 2, 3});
                assertArrayEquals(fresh.meanInput(new int[] {1, 2, 3}), after, "each call on its own: nothing of the last one kept in its cache");
                assertEquals(TinyModels.DEFAULT.embd(), after.length);
                // what a call shares with the last one from position 0 is kept, not computed again: the same numbers as
                // a probe that computes every position
                assertArrayEquals(alone(model, new int[] {1, 2, 5, 6}), probe.meanInput(new int[] {1, 2, 5, 6}), 1e-5f, "two positions kept");
                assertArrayEquals(alone(model, new int[] {1, 2}), probe.meanInput(new int[] {1, 2}), 1e-5f, "a prefix of the last call");
                assertArrayEquals(alone(model, new int[] {1, 2, 5, 7}), probe.meanInput(new int[] {1, 2, 5, 7}), 1e-5f, "kept after a shorter call");
            }
        }
    }

    /** The probe's answer from a probe that has read nothing before. */
    private static float[] alone(LlamaModel model, int[] tokens) {
        try (LayerProbe p = LayerProbe.create(model, 1, 4, 1)) {
            return p.meanInput(tokens);
        }
    }
}
