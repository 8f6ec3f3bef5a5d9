package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.GgufWriter.WeightType;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Training over a frozen base stored in F16, BF16 or Q8_0. The backward through such a weight is ggml's OUT_PROD on
 * a non-F32 matrix (our patch 0003; BF16 used to abort the process). Its gradients must be those of the same model
 * stored in F32 holding the very same values. Not equal to the last bit: the forward matmul rounds activations to
 * the weight's type (F16, or Q8_0 blocks) where the F32 model does not, so the check is on direction and size.
 */
class QuantizedBaseTrainingTest {
    @ParameterizedTest
    @EnumSource(value = WeightType.class, names = {"F16", "BF16", "Q8_0"})
    void gradientsEqualThoseOfTheF32ModelWithTheSameValues(WeightType type) {
        Path quantized = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-" + type + ".gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, type, false);
        Path reference = TinyModels.writeDecoder(TestModels.dir().resolve("tiny-llama-" + type + "-as-f32.gguf"), "llama",
                TinyModels.DEFAULT, TinyModels.DEFAULT.headDim(), 42, type, true);
        LlamaModel.Params load = new LlamaModel.Params(TestModels.params().gpuLayers(), true, false);
        List<String> names = List.of("blk.0.attn_q.weight.lora_a", "blk.0.attn_k.weight.lora_b", "blk.0.attn_v.weight.lora_a",
                "blk.1.attn_output.weight.lora_a", "blk.1.ffn_gate.weight.lora_a", "blk.1.ffn_down.weight.lora_a");
        try (LlamaModel q = LlamaModel.load(quantized, load);
             LlamaModel f = LlamaModel.load(reference, load);
             LoraTrainer tq = LoraTrainer.create(q, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2);
             LoraTrainer tf = LoraTrainer.create(f, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2)) {
            // B = 0 at init would zero every gradient of A; give both the same non-zero B.
            Random rnd = new Random(5);
            for (int layer = 0; layer < 2; layer++) {
                for (String target : LoraTrainer.ALL_TARGETS) {
                    String name = "blk." + layer + "." + target + ".weight.lora_b";
                    float[] b = new float[tq.tensor(name).length];
                    for (int i = 0; i < b.length; i++) {
                        b[i] = (float) rnd.nextGaussian() * 0.1f;
                    }
                    tq.setTensor(name, b);
                    tf.setTensor(name, b);
                }
            }
            LoraTrainer.Example e = new LoraTrainer.Example(q.tokenize("hello world, the model is", true, false),
                    q.tokenize(" the steer", false, false), q.tokenize(" a token in", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            LoraTrainer.Reference ref = tf.reference(e);
            for (String name : names) {
                float[] gq = tq.gradient(e, ref, w, name);
                float[] gf = tf.gradient(e, ref, w, name);
                double dot = 0, nq = 0, nf = 0;
                for (int i = 0; i < gq.length; i++) {
                    dot += (double) gq[i] * gf[i];
                    nq += (double) gq[i] * gq[i];
                    nf += (double) gf[i] * gf[i];
                }
                double cosine = dot / Math.sqrt(nq * nf);
                double sizeRatio = Math.sqrt(nq / nf);
                System.err.printf("%s base, %s: gradient cosine %.6f, norm ratio %.4f%n", type, name, cosine, sizeRatio);
                assertTrue(nf > 0, name + " has a gradient");
                assertTrue(cosine > 0.99, type + " " + name + ": cosine " + cosine);
                assertTrue(Math.abs(sizeRatio - 1) < 0.05, type + " " + name + ": norm ratio " + sizeRatio);
            }
        }
    }
}
