package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.GgufWriter.WeightType;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A quantized weight times many tokens. Serving's result for a token must not depend on the tokens batched with it:
 * a prompt decoded in one batch and one token at a time give the same logits, which is what makes the same request
 * give the same answer after a prefix-cache hit (the prompt's last token is computed again alone) or beside other
 * streams. An F32 path over dequantized weights for 32 or more tokens broke this (tried 2026-12-04, withdrawn). And
 * the trainer's forward through the same quantized weights (Q8_0, and Q4_1, whose batches take patch 0011's kernel)
 * computes what serving computes (the F32 model holding the same values is further from both: the quantized path
 * rounds activations to Q8).
 */
class QuantizedMatmulTest {
    private static final int PROMPT = 40;

    @Test
    void servingIsBatchInvariantAndTheTrainerComputesWhatServingComputes() {
        TestModels.assumeCpuExactness();
        check(WeightType.Q8_0);
    }

    /** Q4_1 (SmolLM2-135M's weights) takes patch 0011's two-rows-by-two-tokens kernel in a batch, one by one alone. */
    @Test
    void theSameWithQ4_1Weights() {
        TestModels.assumeCpuExactness();
        check(WeightType.Q4_1);
    }

    private static void check(WeightType type) {
        Path quantized = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-matmul-" + type + ".gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, type, false);
        Path reference = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-matmul-" + type + "-as-f32.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, type, true);
        LlamaModel.Params load = new LlamaModel.Params(TestModels.params().gpuLayers(), true, false);
        try (LlamaModel q = LlamaModel.load(quantized, load); LlamaModel f = LlamaModel.load(reference, load);
             LoraTrainer tq = LoraTrainer.create(q, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2);
             LoraTrainer tf = LoraTrainer.create(f, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            int[] tokens = new int[PROMPT];
            int[] text = q.tokenize("the steer is in the model, hello world; the answer goes on and on and on", true, false);
            for (int i = 0; i < PROMPT; i++) {
                tokens[i] = text[i % text.length];
            }
            float[] batched = logits(q, tokens, tokens.length);
            assertArrayEquals(logits(q, tokens, 1), batched, "serving: one batch and one token at a time");

            float[] f32 = tf.logits(tokens, false);
            float[] trained = tq.logits(tokens, false);
            double scale = 0, trainer = 0, roundingAway = 0;
            for (int i = 0; i < batched.length; i++) {
                scale = Math.max(scale, Math.abs(batched[i]));
                trainer = Math.max(trainer, Math.abs(trained[i] - batched[i]));
                roundingAway = Math.max(roundingAway, Math.abs(f32[i] - batched[i]));
            }
            System.err.printf("logits of %d positions: max |serving| %.3f; trainer vs serving |diff| %.2e, F32 model vs serving %.2e%n",
                    PROMPT, scale, trainer, roundingAway);
            assertTrue(trainer <= 1e-5 * scale, "the trainer's forward differs from serving's by " + trainer);
            assertTrue(roundingAway > 10 * trainer + 1e-4 * scale, "the F32 model is a Q8 rounding away: " + roundingAway);
        }
    }

    /** Logits of every position, the prompt decoded {@code per} tokens at a time (all of them, or one a step). */
    private static float[] logits(LlamaModel model, int[] tokens, int per) {
        int vocab = model.vocabSize();
        float[] all = new float[tokens.length * vocab];
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            Batch b = ctx.newBatch();
            for (int start = 0; start < tokens.length; start += per) {
                b.clear();
                int end = Math.min(tokens.length, start + per);
                for (int i = start; i < end; i++) {
                    b.add(tokens[i], i, 0, true);
                }
                ctx.decode(b);
                for (int i = start; i < end; i++) {
                    System.arraycopy(ctx.logits(i - start), 0, all, i * vocab, vocab);
                }
            }
        }
        return all;
    }
}
