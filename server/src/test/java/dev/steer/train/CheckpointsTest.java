package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.TestModels;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The job's stopping rule on the tiny llama: a held-out fork counts as learned exactly when training makes the
 * adapter say its correction, the best checkpoint is kept, and a later, worse one does not replace it.
 */
class CheckpointsTest {
    private final LlamaModel model = TestModels.tinyLlama();

    /** The trainer's own greedy continuation (adapter off) of {@code prompt}, {@code n} tokens. */
    private static int[] greedy(LoraTrainer t, int[] prompt, int n, int vocab) {
        int[] tokens = prompt;
        for (int k = 0; k < n; k++) {
            float[] logits = t.logits(tokens, false);
            int row = tokens.length - 1, best = 0;
            for (int v = 1; v < vocab; v++) {
                if (logits[row * vocab + v] > logits[row * vocab + best]) {
                    best = v;
                }
            }
            tokens = Arrays.copyOf(tokens, tokens.length + 1);
            tokens[tokens.length - 1] = best;
        }
        return Arrays.copyOfRange(tokens, prompt.length, tokens.length);
    }

    @Test
    void learningAForkStopsTheJobAndTheBestCheckpointStays() {
        int[] context = model.tokenize("hello world, the model is", true, false);
        int[] correction = model.tokenize(" a steer", false, false);
        TrainingSet.Item item = new TrainingSet.Item(List.of("s1"), new LoraTrainer.Example(context, correction, new int[0]),
                List.of(new TrainingSet.Fork("s1", context, correction)));
        int[] watchPrompt = model.tokenize("once upon a time", true, false);
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            int[] watchAnswer = greedy(t, watchPrompt, 12, model.vocabSize());
            assertNotEquals(correction[0], t.predict(item.example(), false).learn()[0], "the base must not already say the correction");
            Checkpoints c = new Checkpoints(t, model, List.of(item), List.of(watchPrompt), List.of(watchAnswer), 1.0);

            Checkpoints.Check start = c.measure(0);
            assertEquals(0, start.learned());
            assertEquals(1, start.forks());
            assertEquals(0, start.changed(), "the adapter starts as the base model");
            assertFalse(c.done());
            for (int k = 1; k <= Checkpoints.PATIENCE; k++) {
                c.measure(0);
            }
            assertFalse(c.stalled(), "nothing learned yet: the job goes on, however many checks without a better one");

            LoraTrainer.Weights w = LoraTrainer.Weights.sftOnly();
            LoraTrainer.Reference ref = t.reference(item.example());
            int step = 0;
            while (!c.done() && step < 60) {
                t.step(List.of(item.example()), List.of(ref), w, 5e-3f, 0f);
                c.measure(++step);
            }
            assertTrue(c.done(), "60 steps on the fork itself teach it: " + c.checks().get(c.checks().size() - 1));
            int[] said = t.predict(item.example(), true).learn();
            assertArrayEquals(Arrays.copyOf(correction, Math.min(EvalGate.CORRECTION_PREFIX, correction.length)),
                    Arrays.copyOf(said, Math.min(EvalGate.CORRECTION_PREFIX, correction.length)), "done means greedy says the correction");
            Checkpoints.Check best = c.best();
            assertEquals(step, best.step());
            float[] bestWeights = t.snapshot();

            // A much worse adapter afterwards: measured, not kept.
            Random rnd = new Random(3);
            for (String target : LoraTrainer.ALL_TARGETS) {
                for (int l = 0; l < model.info().layers(); l++) {
                    String b = "blk." + l + "." + target + ".weight.lora_b";
                    float[] v = t.tensor(b);
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) rnd.nextGaussian();
                    }
                    t.setTensor(b, v);
                }
            }
            assertFalse(c.stalled(), "the best is the last check");
            Checkpoints.Check worse = c.measure(step + 1);
            assertTrue(worse.learned() < 1, "random large weights forget the fork: " + worse);
            assertEquals(best, c.best());
            for (int k = 2; k <= Checkpoints.PATIENCE; k++) {
                assertFalse(c.stalled(), (k - 1) + " checks after the best");
                c.measure(step + k);
            }
            assertTrue(c.stalled(), Checkpoints.PATIENCE + " checks after the best, none better");
            assertEquals(best, c.best());
            c.restoreBest();
            assertArrayEquals(bestWeights, t.snapshot());
            assertEquals(step + 1 + 2 * Checkpoints.PATIENCE, c.checks().size());
        }
    }

    /**
     * The order of checkpoints: forks learned whole first; while none is, the later (a correction no adapter can say
     * whole at a held-out fork, a converted temperature, left every check tied and kept the earliest); then fewer
     * watch answers changed, then the earlier (a later check must be better to replace one); nothing beyond
     * max_changed while something within it exists.
     */
    @Test
    void checkpointsAreOrderedByForksThenWhileNoneTheLaterThenFewerChanged() {
        // Check(step, forks, learned, watched, changed); maxChanged 0.25 of 12 watched: 3 allowed
        assertTrue(Checkpoints.better(new Checkpoints.Check(80, 4, 0, 12, 1), new Checkpoints.Check(16, 4, 0, 12, 0), 0.25),
                "none learned whole: the later wins, though it changed one more watch answer");
        assertFalse(Checkpoints.better(new Checkpoints.Check(16, 4, 0, 12, 0), new Checkpoints.Check(80, 4, 0, 12, 1), 0.25));
        assertTrue(Checkpoints.better(new Checkpoints.Check(80, 4, 1, 12, 2), new Checkpoints.Check(16, 4, 0, 12, 0), 0.25),
                "a fork learned whole beats none");
        assertFalse(Checkpoints.better(new Checkpoints.Check(80, 4, 0, 12, 0), new Checkpoints.Check(16, 4, 1, 12, 2), 0.25));
        assertTrue(Checkpoints.better(new Checkpoints.Check(80, 4, 2, 12, 0), new Checkpoints.Check(16, 4, 2, 12, 1), 0.25),
                "the same forks learned: fewer changed wins");
        assertFalse(Checkpoints.better(new Checkpoints.Check(80, 4, 2, 12, 1), new Checkpoints.Check(16, 4, 2, 12, 1), 0.25),
                "the same forks learned and changed: the earlier stays");
        assertFalse(Checkpoints.better(new Checkpoints.Check(80, 4, 0, 12, 4), new Checkpoints.Check(16, 4, 0, 12, 3), 0.25),
                "beyond max_changed no later step makes up for it");
    }
}
