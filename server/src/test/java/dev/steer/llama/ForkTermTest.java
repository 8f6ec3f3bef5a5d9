package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fork term (weight {@code fork}): a second cross-entropy on each correction's first token only, the token that
 * replaced the model's own choice. On the tiny llama, with an answer steered twice: the loss against a reference
 * written out here from the logits (which rows count is the masking: the first token of each correction, not the
 * rest of it, not the kept text), and its gradient against finite differences.
 */
class ForkTermTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    /** prompt | kept | correction 1 | kept | correction 2 | continuation: two corrections of several tokens each. */
    private LoraTrainer.Example twiceSteered() {
        int[][] parts = {
            model.tokenize("hello world,", true, false),
            model.tokenize(" the model", false, false),
            model.tokenize(" said the steer", false, false),
            model.tokenize(" and then", false, false),
            model.tokenize(" a second fix here", false, false),
            model.tokenize(" in a token", false, false),
        };
        byte[] partRoles = {LoraTrainer.NONE, LoraTrainer.KEEP, LoraTrainer.LEARN, LoraTrainer.KEEP, LoraTrainer.LEARN, LoraTrainer.KEEP};
        List<Integer> tokens = new ArrayList<>();
        List<Byte> roles = new ArrayList<>();
        for (int p = 0; p < parts.length; p++) {
            assertTrue(p == 0 || parts[p].length >= 2 || partRoles[p] != LoraTrainer.LEARN, "each correction has tokens after its first");
            for (int tok : parts[p]) {
                tokens.add(tok);
                roles.add(partRoles[p]);
            }
        }
        int[] t = tokens.stream().mapToInt(Integer::intValue).toArray();
        byte[] r = new byte[roles.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = roles.get(i);
        }
        return new LoraTrainer.Example(t, r, -1, new int[0]);
    }

    private LoraTrainer trainer(int seed) {
        LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
        Random rnd = new Random(seed + 100);
        for (String target : LoraTrainer.ALL_TARGETS) {
            for (int l = 0; l < model.info().layers(); l++) {
                String b = "blk." + l + "." + target + ".weight.lora_b";
                float[] v = t.tensor(b);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian() * 0.05f;
                }
                t.setTensor(b, v);
            }
        }
        return t;
    }

    /** -log p(next token) at each row, from the adapter's logits. */
    private double nll(float[] logits, int row, int next) {
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[row * vocab + v]);
        }
        double z = 0;
        for (int v = 0; v < vocab; v++) {
            z += Math.exp(logits[row * vocab + v] - max);
        }
        return -(logits[row * vocab + next] - max - Math.log(z));
    }

    @Test
    void forkTermIsTheMeanCrossEntropyOfEachCorrectionsFirstTokenOnly() {
        LoraTrainer.Example e = twiceSteered();
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            float[] logits = t.logits(e.tokens(), true);
            double allLearn = 0, firsts = 0;
            int nLearn = 0, nFirst = 0;
            for (int i = 1; i < e.tokens().length; i++) {
                if (e.roles()[i] != LoraTrainer.LEARN) {
                    continue;
                }
                double ce = nll(logits, i - 1, e.tokens()[i]);
                allLearn += ce;
                nLearn++;
                if (e.roles()[i - 1] != LoraTrainer.LEARN) {
                    firsts += ce;
                    nFirst++;
                }
            }
            assertEquals(2, nFirst, "two corrections");
            assertTrue(nLearn >= 5, "and more of them than their first tokens: " + nLearn);
            double fork = firsts / nFirst, learn = allLearn / nLearn;
            assertTrue(Math.abs(fork - learn) > 1e-3, "the two means differ, so the test sees which rows count");
            assertEquals(1.7 * fork, t.evaluate(e, none, new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 1.7f)).loss(), 1e-4 * (1 + fork),
                    "fork only: 1.7 x mean CE over the first tokens");
            assertEquals(0.6 * learn + 1.7 * fork, t.evaluate(e, none, new LoraTrainer.Weights(0.6f, 0f, 0.1f, 0f, 1.7f)).loss(),
                    1e-4 * (1 + learn + fork), "beside the CE over every correction token");
            assertEquals(0.6 * learn, t.evaluate(e, none, new LoraTrainer.Weights(0.6f, 0f, 0.1f, 0f, 0f)).loss(), 1e-4 * (1 + learn),
                    "weight 0: no fork term");
        }
    }

    @Test
    void forkTermGradientMatchesFiniteDifferences() {
        LoraTrainer.Example e = twiceSteered();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference ref = t.reference(e);
            for (LoraTrainer.Weights w : List.of(new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 1f), new LoraTrainer.Weights(1f, 0f, 0.1f, 2f, 3f))) {
                for (String name : List.of("blk.0.attn_q.weight.lora_a", "blk.1.attn_v.weight.lora_b", "blk.0.ffn_down.weight.lora_b",
                        "blk.1.ffn_gate.weight.lora_a")) {
                    LoraTrainerTest.checkGradient(t, e, ref, w, name);
                }
            }
        }
    }

    @Test
    void aNegativeOrNonFiniteForkWeightIsRefused() {
        LoraTrainer.Example e = twiceSteered();
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            for (float bad : new float[] {-1f, Float.NaN, Float.POSITIVE_INFINITY}) {
                assertThrows(IllegalArgumentException.class, () -> t.evaluate(e, none, new LoraTrainer.Weights(1f, 0f, 0.1f, 0f, bad)),
                        Arrays.toString(new float[] {bad}));
            }
        }
    }
}
