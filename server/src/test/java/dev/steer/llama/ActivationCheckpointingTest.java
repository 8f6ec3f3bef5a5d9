package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Activation checkpointing recomputes each block during the backward pass instead of keeping its activations: the
 * gradients of every LoRA tensor, and so the training steps, must come out the same as without it.
 */
class ActivationCheckpointingTest {

    static Path model(String arch) {
        return switch (arch) {
            case "llama" -> TestModels.tinyLlamaPath();
            // Gemma 3 brings the sliding-window mask and a window shorter than the examples.
            case "gemma3" -> TinyModels.writeGemma3(TestModels.dir().resolve("tiny-gemma3-ckpt.gguf"), 4, 21);
            default -> TinyModels.writeDecoder(TestModels.dir().resolve("tiny-" + arch + "-ckpt.gguf"), arch, TinyModels.DEFAULT, 32, 22);
        };
    }

    static List<String> tensorNames(int layers) {
        List<String> names = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            for (String target : LoraTrainer.ALL_TARGETS) {
                names.add("blk." + l + "." + target + ".weight.lora_a");
                names.add("blk." + l + "." + target + ".weight.lora_b");
            }
        }
        return names;
    }

    /** B made non-zero the same way in both trainers, so every tensor (A included) has a gradient. */
    static void perturb(LoraTrainer t, List<String> names) {
        Random rnd = new Random(9);
        for (String name : names) {
            if (name.endsWith("lora_b")) {
                float[] v = t.tensor(name);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * 0.05f;
                }
                t.setTensor(name, v);
            }
        }
    }

    static double relativeDiff(float[] a, float[] b) {
        double d = 0, n = 0;
        for (int i = 0; i < a.length; i++) {
            d += (a[i] - b[i]) * (double) (a[i] - b[i]);
            n += a[i] * (double) a[i];
        }
        return Math.sqrt(d / Math.max(n, 1e-30));
    }

    /**
     * {@code segments} 0: every block; 2, 3: in that many runs of blocks (Gemma 3's six blocks: 3 + 3 and 2 + 2 + 2;
     * the two-block llama and qwen3: 1 + 1 either way); 4 with LoRA on the last 3 of Gemma 3's blocks: at most one
     * run per block, the first run starting from the kept input.
     */
    @ParameterizedTest
    @CsvSource({"llama,0,0", "gemma3,0,0", "qwen3,0,0", "llama,2,0", "gemma3,2,0", "gemma3,3,0", "qwen3,3,0", "gemma3,4,3", "gemma3,2,3"})
    void theSameGradientsAndStepsAsKeepingEveryActivation(String arch, int segments, int loraLayers) {
        try (LlamaModel m = LlamaModel.load(model(arch), TestModels.params());
             LoraTrainer plain = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, loraLayers, 3, 2);
             LoraTrainer ckpt = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, loraLayers, 3, 2)) {
            if (segments == 0) {
                ckpt.checkpointing(true);
            } else {
                ckpt.checkpointing(segments);
            }
            int layers = m.info().layers(), adapted = loraLayers == 0 ? layers : loraLayers;
            List<String> names = tensorNames(layers).stream()
                    .filter(n -> Integer.parseInt(n.split("\\.")[1]) >= layers - adapted).toList();
            perturb(plain, names);
            perturb(ckpt, names);
            LoraTrainer.Example e = new LoraTrainer.Example(m.tokenize("hello world, the model is in", true, false),
                    m.tokenize(" the steer", false, false), m.tokenize(" a token in the", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            LoraTrainer.Reference ref = plain.reference(e);
            LoraTrainer.Reference ref2 = ckpt.reference(e);
            assertEquals(ref.logpChosen(), ref2.logpChosen(), "the forward pass does not change");
            assertEquals(ref.logpRejected(), ref2.logpRejected(), "the forward pass does not change");
            for (String name : names) {
                float[] a = plain.gradient(e, ref, w, name), b = ckpt.gradient(e, ref, w, name);
                double norm = 0;
                for (float x : a) {
                    norm += x * x;
                }
                assertTrue(norm > 0, arch + " " + name + ": a gradient to compare");
                double rel = relativeDiff(a, b);
                assertTrue(rel < 1e-5, arch + " " + name + ": relative difference " + rel);
            }
            // ... in less graph memory (a checkpointing that did nothing would pass the comparisons above).
            assertTrue(ckpt.computeBufferBytes() < plain.computeBufferBytes(),
                    arch + ": " + ckpt.computeBufferBytes() + " bytes of graphs, against " + plain.computeBufferBytes() + " without checkpointing");
            // Training steps: the same losses and the same tensors after them (the SFT-only example checks the
            // graphs without a rejected span).
            List<LoraTrainer.Example> batch = List.of(e, new LoraTrainer.Example(e.context(), e.chosen(), new int[0]));
            List<LoraTrainer.Reference> refs = batch.stream().map(plain::reference).toList();
            LoraTrainer.Optimizer o = new LoraTrainer.Optimizer(1e-2f, 0f, 1f);
            for (int s = 0; s < 3; s++) {
                LoraTrainer.StepResult p = plain.step(batch, refs, w, o), c = ckpt.step(batch, refs, w, o);
                assertEquals(p.loss(), c.loss(), 1e-5 * Math.abs(p.loss()), arch + " step " + s + " loss");
                assertEquals(p.gradNorm(), c.gradNorm(), 1e-5 * p.gradNorm(), arch + " step " + s + " grad norm");
            }
            for (String name : names) {
                double rel = relativeDiff(plain.tensor(name), ckpt.tensor(name));
                assertTrue(rel < 1e-4, arch + " " + name + " after 3 steps: relative difference " + rel);
            }
        }
    }

    /** More runs, fewer blocks' activations at once: every block < 3 runs (2 + 2 + 2) < 2 runs (3 + 3) < none. */
    @Test
    void moreRunsKeepLessAtOnce() {
        try (LlamaModel m = LlamaModel.load(model("gemma3"), TestModels.params())) {
            LoraTrainer.Example e = new LoraTrainer.Example(m.tokenize("hello world, the model is in", true, false),
                    m.tokenize(" the steer", false, false), new int[0]);
            long[] bytes = new long[4];
            for (int c = 0; c < 4; c++) {
                try (LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2)) {
                    switch (c) {
                        case 0 -> t.checkpointing(true);
                        case 1 -> t.checkpointing(3);
                        case 2 -> t.checkpointing(2);
                        default -> t.checkpointing(false);
                    }
                    t.gradient(e, t.reference(e), LoraTrainer.Weights.sftOnly(), "blk.5.attn_q.weight.lora_a");
                    bytes[c] = t.computeBufferBytes();
                }
            }
            for (int c = 1; c < 4; c++) {
                assertTrue(bytes[c - 1] < bytes[c], java.util.Arrays.toString(bytes));
            }
        }
    }
}
