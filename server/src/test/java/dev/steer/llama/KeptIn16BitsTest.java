package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The largest activations kept between the passes in 16 bits (native/src/train/kept16.cpp): the forward pass is the
 * same bit for bit; every gradient element is the 32-bit one within what rounding an activation to 16 bits moves it
 * (a copy read back as the wrong tensor, or not widened, is off by far more); the gradients are not bit-equal (the
 * rewrite ran) and the graphs take less memory. With the attention level and with checkpointing as well.
 */
class KeptIn16BitsTest {

    /** Elementwise: |g16 - g32| <= RTOL |g32| + ATOL max|g32|, over every element of every LoRA tensor. */
    static final double RTOL = 0.05, ATOL = 0.01;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "gemma3", "qwen3"})
    void gradientsOfActivationsRoundedTo16BitsInLessMemory(String arch) {
        try (LlamaModel m = LlamaModel.load(ActivationCheckpointingTest.model(arch), TestModels.params())) {
            List<String> names = ActivationCheckpointingTest.tensorNames(m.info().layers());
            LoraTrainer.Example e = new LoraTrainer.Example(
                    m.tokenize("hello world, the model is in the house and the steer is on the road to the town".repeat(3), true, false),
                    m.tokenize(" the steer", false, false), m.tokenize(" a token in the", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            for (String setting : List.of("elementwise", "attention", "checkpointing")) {
                try (LoraTrainer wide = trainer(m, setting, false); LoraTrainer narrow = trainer(m, setting, true)) {
                    for (LoraTrainer t : List.of(wide, narrow)) {
                        ActivationCheckpointingTest.perturb(t, names);
                    }
                    LoraTrainer.Reference ref = wide.reference(e);
                    assertEquals(ref.logpChosen(), narrow.reference(e).logpChosen(), arch + " " + setting + ": the forward pass does not change");
                    int differing = 0;
                    double worst = 0;
                    for (String name : names) {
                        float[] want = wide.gradient(e, ref, w, name), got = narrow.gradient(e, ref, w, name);
                        double max = 0;
                        for (float x : want) {
                            max = Math.max(max, Math.abs(x));
                        }
                        assertTrue(max > 0, arch + " " + name + ": a gradient to compare");
                        for (int i = 0; i < want.length; i++) {
                            double err = Math.abs(got[i] - want[i]);
                            worst = Math.max(worst, err / (RTOL * Math.abs(want[i]) + ATOL * max));
                            if (got[i] != want[i]) {
                                differing++;
                            }
                        }
                    }
                    assertTrue(worst <= 1, arch + " " + setting + ": the worst element at " + worst + " of its tolerance");
                    assertTrue(differing > 0, arch + " " + setting + ": the gradients of rounded activations differ somewhere");
                    assertTrue(narrow.computeBufferBytes() < wide.computeBufferBytes(), arch + " " + setting + ": "
                            + narrow.computeBufferBytes() + " bytes of graphs against " + wide.computeBufferBytes());
                }
            }
        }
    }

    private static LoraTrainer trainer(LlamaModel m, String setting, boolean kept16) {
        LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2);
        switch (setting) {
            case "attention" -> t.recompute(LoraTrainer.Recompute.ATTENTION);
            case "checkpointing" -> t.checkpointing(2).recompute(LoraTrainer.Recompute.ATTENTION);
            default -> t.recompute(LoraTrainer.Recompute.ELEMENTWISE);
        }
        return t.keepActivationsIn16Bits(kept16);
    }
}
