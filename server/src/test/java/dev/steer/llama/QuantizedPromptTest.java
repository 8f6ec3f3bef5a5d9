package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.GgufWriter.WeightType;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A prompt (32 or more tokens in one batch) through quantized weights: the CPU dequantizes each weight to F32 once and
 * multiplies the F32 activations by it (native/patches/0008), so it computes what the F32 model holding the very same
 * values computes, to float rounding. Decode (one token a step) keeps ggml's quantized path, which rounds the
 * activations to Q8 blocks first: further from the F32 model, and by much more than float rounding.
 */
class QuantizedPromptTest {
    private static final int PROMPT = 40;

    @Test
    void aPromptThroughQ8WeightsComputesWhatTheF32ModelWithTheSameValuesComputes() {
        Path quantized = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-prompt-Q8_0.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, WeightType.Q8_0, false);
        Path reference = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-prompt-Q8_0-as-f32.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, WeightType.Q8_0, true);
        LlamaModel.Params load = new LlamaModel.Params(TestModels.params().gpuLayers(), true, false);
        try (LlamaModel q = LlamaModel.load(quantized, load); LlamaModel f = LlamaModel.load(reference, load)) {
            int[] tokens = new int[PROMPT];
            int[] text = q.tokenize("the steer is in the model, hello world; the answer goes on and on and on", true, false);
            for (int i = 0; i < PROMPT; i++) {
                tokens[i] = text[i % text.length];
            }
            int vocab = q.vocabSize();
            float[] want = promptLogits(f, tokens);
            float[] got = promptLogits(q, tokens);
            float[] stepped = steppedLogits(q, tokens);
            double scale = 0, prompt = 0, decode = 0;
            for (int i = 0; i < want.length; i++) {
                scale = Math.max(scale, Math.abs(want[i]));
                prompt = Math.max(prompt, Math.abs(got[i] - want[i]));
                decode = Math.max(decode, Math.abs(stepped[i] - want[i]));
            }
            System.err.printf("logits of %d positions x %d: max |F32| %.3f, prompt path |diff| %.2e, one token a step %.2e%n",
                    PROMPT, vocab, scale, prompt, decode);
            assertTrue(prompt <= 1e-5 * scale, "the prompt's logits differ from the F32 model's by " + prompt);
            assertTrue(decode > 10 * prompt, "decode rounds its activations to Q8: " + decode + " vs " + prompt);
        }
    }

    /** Logits of every position, the prompt decoded as one batch. */
    private static float[] promptLogits(LlamaModel model, int[] tokens) {
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact())) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < tokens.length; i++) {
                b.add(tokens[i], i, 0, true);
            }
            ctx.decode(b);
            int vocab = model.vocabSize();
            float[] all = new float[tokens.length * vocab];
            for (int i = 0; i < tokens.length; i++) {
                System.arraycopy(ctx.logits(i), 0, all, i * vocab, vocab);
            }
            return all;
        }
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
