package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.GgufWriter.WeightType;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The two ways the CPU multiplies a quantized weight by many tokens. Serving takes ggml's quantized path, whose result
 * for a token does not depend on the tokens batched with it: a prompt decoded in one batch and one token at a time
 * give the same logits, which is what makes the same request give the same answer after a prefix-cache hit or beside
 * other streams. The trainer asks for the dequantizing path (native/patches/0008): its forward over a 40-token
 * example through Q8_0 weights computes what the F32 model holding the very same values computes.
 */
class QuantizedMatmulTest {
    private static final int PROMPT = 40;

    @Test
    void servingIsBatchInvariantAndTheTrainersForwardIsTheF32Models() {
        Path quantized = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-matmul-Q8_0.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, WeightType.Q8_0, false);
        Path reference = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-matmul-Q8_0-as-f32.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, WeightType.Q8_0, true);
        LlamaModel.Params load = new LlamaModel.Params(TestModels.params().gpuLayers(), true, false);
        try (LlamaModel q = LlamaModel.load(quantized, load); LlamaModel f = LlamaModel.load(reference, load);
             LoraTrainer tq = LoraTrainer.create(q, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2);
             LoraTrainer tf = LoraTrainer.create(f, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            int[] tokens = new int[PROMPT];
            int[] text = q.tokenize("the steer is in the model, hello world; the answer goes on and on and on", true, false);
            for (int i = 0; i < PROMPT; i++) {
                tokens[i] = text[i % text.length];
            }
            float[] batched = promptLogits(q, tokens);
            assertArrayEquals(steppedLogits(q, tokens), batched, "serving: one batch and one token at a time");

            float[] want = tf.logits(tokens, false);
            float[] trained = tq.logits(tokens, false);
            double scale = 0, trainer = 0, serving = 0;
            for (int i = 0; i < want.length; i++) {
                scale = Math.max(scale, Math.abs(want[i]));
                trainer = Math.max(trainer, Math.abs(trained[i] - want[i]));
                serving = Math.max(serving, Math.abs(batched[i] - want[i]));
            }
            System.err.printf("logits of %d positions: max |F32 model| %.3f; trainer on Q8_0 |diff| %.2e, serving on Q8_0 %.2e%n",
                    PROMPT, scale, trainer, serving);
            assertTrue(trainer <= 1e-5 * scale, "the trainer's forward differs from the F32 model's by " + trainer);
            assertTrue(serving > 10 * trainer + 1e-4 * scale, "serving rounds activations to Q8: " + serving + " vs " + trainer);
        }
    }

    /** Logits of every position, the prompt decoded as one batch. */
    private static float[] promptLogits(LlamaModel model, int[] tokens) {
        int vocab = model.vocabSize();
        float[] all = new float[tokens.length * vocab];
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                b.add(tokens[i], i, 0, true);
            }
            ctx.decode(b);
            for (int i = 0; i < tokens.length; i++) {
                System.arraycopy(ctx.logits(i), 0, all, i * vocab, vocab);
            }
        }
        return all;
    }

    /** Logits of every position, one token a step. */
    private static float[] steppedLogits(LlamaModel model, int[] tokens) {
        int vocab = model.vocabSize();
        float[] all = new float[tokens.length * vocab];
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                b.clear();
                b.add(tokens[i], i, 0, true);
                ctx.decode(b);
                System.arraycopy(ctx.logits(0), 0, all, i * vocab, vocab);
            }
        }
        return all;
    }
}
