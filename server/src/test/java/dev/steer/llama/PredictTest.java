package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.steer.testing.TestModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link LoraTrainer#predict} (the teacher-forced greedy check a job stops on) against the argmax of the full
 * logits, row by row, with and without the adapter; and {@link LoraTrainer#snapshot}/{@link LoraTrainer#restore},
 * which a job keeps its best checkpoint with.
 */
class PredictTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    /** prompt | kept | correction (learn) | continuation (keep), with a rejected branch at the correction. */
    private LoraTrainer.Example example() {
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] kept = model.tokenize(" the model is", false, false);
        int[] correction = model.tokenize(" the steer", false, false);
        int[] continuation = model.tokenize(" in a token", false, false);
        int[] tokens = new int[prompt.length + kept.length + correction.length + continuation.length];
        int o = 0;
        for (int[] p : new int[][] {prompt, kept, correction, continuation}) {
            System.arraycopy(p, 0, tokens, o, p.length);
            o += p.length;
        }
        byte[] roles = new byte[tokens.length];
        int fork = prompt.length + kept.length;
        Arrays.fill(roles, prompt.length, tokens.length, LoraTrainer.KEEP);
        Arrays.fill(roles, fork, fork + correction.length, LoraTrainer.LEARN);
        return new LoraTrainer.Example(tokens, roles, fork, model.tokenize(" a token", false, false));
    }

    /** The argmax of each row that predicts a token of {@code role}, from the full logits. */
    private int[] argmaxOf(float[] logits, LoraTrainer.Example e, byte role) {
        List<Integer> out = new ArrayList<>();
        for (int i = 1; i < e.tokens().length; i++) {
            if (e.roles()[i] != role) {
                continue;
            }
            int row = i - 1, best = 0;
            for (int v = 1; v < vocab; v++) {
                if (logits[row * vocab + v] > logits[row * vocab + best]) {
                    best = v;
                }
            }
            out.add(best);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void predictIsTheArgmaxOfEveryLearnAndKeepRow() {
        LoraTrainer.Example e = example();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            LoraTrainerTest.perturbB(t, 3, 0.2f);  // the adapter moves the logits: with and without it must differ
            for (boolean withAdapter : new boolean[] {false, true}) {
                float[] logits = t.logits(e.tokens(), withAdapter);
                LoraTrainer.Predictions p = t.predict(e, withAdapter);
                assertArrayEquals(argmaxOf(logits, e, LoraTrainer.LEARN), p.learn(), "learn rows, adapter " + withAdapter);
                assertArrayEquals(argmaxOf(logits, e, LoraTrainer.KEEP), p.keep(), "keep rows, adapter " + withAdapter);
                assertEquals(e.count(LoraTrainer.KEEP), p.keep().length);
            }
            LoraTrainer.Predictions off = t.predict(e, false), on = t.predict(e, true);
            assertFalse(Arrays.equals(off.keep(), on.keep()) && Arrays.equals(off.learn(), on.learn()),
                    "a perturbed adapter changes some argmax on the tiny model");
        }
    }

    @Test
    void anExampleWithoutRowsToPredictIsRefusedNotACrash() {
        int[] tokens = model.tokenize("hello world", true, false);
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            assertThrows(IllegalArgumentException.class, () -> t.predict(new LoraTrainer.Example(tokens, new byte[tokens.length], -1, new int[0]), true));
        }
    }

    @Test
    void restoreGivesBackTheSnapshotsWeights() {
        LoraTrainer.Example e = example();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            LoraTrainerTest.perturbB(t, 5, 0.1f);
            float[] saved = t.snapshot();
            float[] before = t.logits(e.tokens(), true);
            LoraTrainerTest.perturbB(t, 6, 0.3f);
            assertFalse(Arrays.equals(before, t.logits(e.tokens(), true)));
            t.restore(saved);
            assertArrayEquals(before, t.logits(e.tokens(), true));
            assertArrayEquals(saved, t.snapshot());
            assertThrows(IllegalArgumentException.class, () -> t.restore(new float[saved.length - 1]));
        }
    }
}
