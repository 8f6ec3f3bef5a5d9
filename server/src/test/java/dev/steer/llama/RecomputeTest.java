package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Activations computed again where the backward pass reads them (native/src/train/recompute.cpp): the copies are the
 * same ops on the same inputs, so every gradient and every step must be the same bit for bit as with every activation
 * kept, in less graph memory at each level (a rewrite that did nothing would pass the comparisons alone; one whose
 * copies never ran, or ran on freed inputs, fails them). The same with activation checkpointing in two runs, as a job
 * that asks for checkpointing runs it (JobRunner: the attention level), against two runs keeping every activation.
 */
class RecomputeTest {

    @ParameterizedTest
    @ValueSource(strings = {"llama", "gemma3", "qwen3"})
    void theSameGradientsAndStepsBitForBitInLessMemory(String arch) {
        try (LlamaModel m = LlamaModel.load(ActivationCheckpointingTest.model(arch), TestModels.params())) {
            LoraTrainer.Recompute[] levels = LoraTrainer.Recompute.values();  // NONE, ELEMENTWISE, ATTENTION
            LoraTrainer[] t = new LoraTrainer[levels.length];
            try {
                int layers = m.info().layers();
                List<String> names = ActivationCheckpointingTest.tensorNames(layers);
                for (int i = 0; i < levels.length; i++) {
                    t[i] = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recompute(levels[i]);
                    ActivationCheckpointingTest.perturb(t[i], names);
                }
                // Long enough that the attention probabilities (heads x T x T) weigh in the graph's memory.
                LoraTrainer.Example e = new LoraTrainer.Example(
                        m.tokenize("hello world, the model is in the house and the steer is on the road to the town".repeat(3), true, false),
                        m.tokenize(" the steer", false, false), m.tokenize(" a token in the", false, false));
                LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
                LoraTrainer.Reference ref = t[0].reference(e);
                for (int i = 1; i < levels.length; i++) {  // each trainer's graphs alike, for the memory comparison
                    assertEquals(ref.logpChosen(), t[i].reference(e).logpChosen(), "the forward pass does not change");
                }
                for (String name : names) {
                    float[] kept = t[0].gradient(e, ref, w, name);
                    double norm = 0;
                    for (float x : kept) {
                        norm += x * x;
                    }
                    assertTrue(norm > 0, arch + " " + name + ": a gradient to compare");
                    for (int i = 1; i < levels.length; i++) {
                        assertArrayEquals(kept, t[i].gradient(e, ref, w, name), arch + " " + name + " with " + levels[i]);
                    }
                }
                for (int i = 1; i < levels.length; i++) {
                    assertTrue(t[i].computeBufferBytes() < t[i - 1].computeBufferBytes(),
                            arch + ": " + levels[i] + " " + t[i].computeBufferBytes() + " bytes of graphs, " + levels[i - 1] + " " + t[i - 1].computeBufferBytes());
                }
                List<LoraTrainer.Example> batch = List.of(e, new LoraTrainer.Example(e.context(), e.chosen(), new int[0]));
                List<LoraTrainer.Reference> refs = batch.stream().map(t[0]::reference).toList();
                LoraTrainer.Optimizer o = new LoraTrainer.Optimizer(1e-2f, 0f, 1f);
                for (int s = 0; s < 3; s++) {
                    LoraTrainer.StepResult kept = t[0].step(batch, refs, w, o);
                    for (int i = 1; i < levels.length; i++) {
                        LoraTrainer.StepResult again = t[i].step(batch, refs, w, o);
                        assertEquals(kept.loss(), again.loss(), arch + " step " + s + " loss with " + levels[i]);
                        assertEquals(kept.gradNorm(), again.gradNorm(), arch + " step " + s + " grad norm with " + levels[i]);
                    }
                }
                for (String name : names) {
                    for (int i = 1; i < levels.length; i++) {
                        assertArrayEquals(t[0].tensor(name), t[i].tensor(name), arch + " " + name + " after 3 steps with " + levels[i]);
                    }
                }
                // Checkpointing in two runs, with and without the attention level: the same gradients, less memory.
                try (LoraTrainer kept = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recompute(LoraTrainer.Recompute.NONE);
                     LoraTrainer again = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recompute(LoraTrainer.Recompute.ATTENTION)) {
                    for (LoraTrainer x : List.of(kept, again)) {
                        x.checkpointing(2);
                        ActivationCheckpointingTest.perturb(x, names);
                        x.reference(e);
                    }
                    for (String name : names) {
                        assertArrayEquals(kept.gradient(e, ref, w, name), again.gradient(e, ref, w, name), arch + " " + name + " in two runs");
                    }
                    assertTrue(again.computeBufferBytes() < kept.computeBufferBytes(),
                            arch + " in two runs: " + again.computeBufferBytes() + " bytes of graphs against " + kept.computeBufferBytes());
                }
            } finally {
                for (LoraTrainer x : t) {
                    if (x != null) {
                        x.close();
                    }
                }
            }
        }
    }

    /**
     * The attention level in the lowest blocks only ({@link LoraTrainer#recomputeAttention}): the same gradients bit for
     * bit; no block, the elementwise level's memory; every block, the attention level's; one block, strictly between
     * (a count that was ignored, or that reached no block or every block, fails one of them).
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "gemma3"})
    void theAttentionOfTheLowestBlocksOnly(String arch) {
        try (LlamaModel m = LlamaModel.load(ActivationCheckpointingTest.model(arch), TestModels.params())) {
            int layers = m.info().layers();
            List<String> names = ActivationCheckpointingTest.tensorNames(layers);
            LoraTrainer.Example e = new LoraTrainer.Example(
                    m.tokenize("hello world, the model is in the house and the steer is on the road to the town".repeat(3), true, false),
                    m.tokenize(" the steer", false, false), m.tokenize(" a token in the", false, false));
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            try (LoraTrainer elementwise = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recompute(LoraTrainer.Recompute.ELEMENTWISE);
                 LoraTrainer none = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recomputeAttention(0);
                 LoraTrainer one = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recomputeAttention(1);
                 LoraTrainer every = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recomputeAttention(layers);
                 LoraTrainer attention = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 4, 8f, 0, 3, 2).recompute(LoraTrainer.Recompute.ATTENTION)) {
                List<LoraTrainer> all = List.of(elementwise, none, one, every, attention);
                for (LoraTrainer t : all) {
                    ActivationCheckpointingTest.perturb(t, names);
                    t.reference(e);
                }
                LoraTrainer.Reference ref = elementwise.reference(e);
                for (String name : names) {
                    float[] want = elementwise.gradient(e, ref, w, name);
                    for (LoraTrainer t : all.subList(1, all.size())) {
                        assertArrayEquals(want, t.gradient(e, ref, w, name), arch + " " + name);
                    }
                }
                assertEquals(elementwise.computeBufferBytes(), none.computeBufferBytes(), arch + ": no block's attention");
                assertEquals(attention.computeBufferBytes(), every.computeBufferBytes(), arch + ": every block's attention");
                assertTrue(one.computeBufferBytes() < none.computeBufferBytes() && one.computeBufferBytes() > every.computeBufferBytes(),
                        arch + ": one block's attention " + one.computeBufferBytes() + " bytes of graphs, none " + none.computeBufferBytes()
                                + ", every block " + every.computeBufferBytes());
            }
        }
    }
}
