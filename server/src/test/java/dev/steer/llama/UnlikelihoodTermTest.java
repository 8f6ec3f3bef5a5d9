package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The unlikelihood term (weight {@code unlikelihood}): -log(1 - p(token)) on {@link LoraTrainer#AVOID} rows, the mean
 * over them. On the tiny llama: the loss against a reference written out here from the logits (which rows count is
 * the masking: avoid rows only, beside keep rows the KL reads), its gradient against finite differences, and that
 * training with it makes the avoided token less likely where it was avoided.
 */
class UnlikelihoodTermTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    /** prompt | own text (keep) | the same words again: the 2nd and later tokens of the repeat avoided, then nothing. */
    private LoraTrainer.Example looping() {
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] own = model.tokenize(" the model said a token", false, false);
        int[] tokens = new int[prompt.length + 2 * own.length];
        System.arraycopy(prompt, 0, tokens, 0, prompt.length);
        System.arraycopy(own, 0, tokens, prompt.length, own.length);
        System.arraycopy(own, 0, tokens, prompt.length + own.length, own.length);
        byte[] roles = new byte[tokens.length];
        int again = prompt.length + own.length;
        Arrays.fill(roles, prompt.length, again + 1, LoraTrainer.KEEP);
        Arrays.fill(roles, again + 1, Math.min(tokens.length, again + 4), LoraTrainer.AVOID);
        return new LoraTrainer.Example(tokens, roles, -1, new int[0]);
    }

    private LoraTrainer trainer(int seed) {
        LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
        LoraTrainerTest.perturbB(t, seed + 100, 0.05f);
        return t;
    }

    /** p(next) at a row, from logits. */
    private double prob(float[] logits, int row, int next) {
        return Math.exp(LoraTrainerTest.logSoftmax(logits, row, vocab)[next]);
    }

    private double reference(LoraTrainer.Example e, float[] logits) {
        double sum = 0;
        int n = 0;
        for (int i = 1; i < e.tokens().length; i++) {
            if (e.roles()[i] == LoraTrainer.AVOID) {
                sum -= Math.log(1 - prob(logits, i - 1, e.tokens()[i]));
                n++;
            }
        }
        assertEquals(3, n, "three avoided tokens");
        return sum / n;
    }

    /**
     * The adapter's own text cut at a repeat on its first token: nothing kept, nothing learned, only tokens to avoid.
     * Its reference graph then has no output, so none of its inputs gets a buffer, and setting one aborted the process
     * (ggml_backend_tensor_set; an on_policy + unlikelihood job did so). Its reference is empty and a step with the
     * unlikelihood term trains on it, with LoRA on every block and on the last one only (the kept-input path).
     */
    @Test
    void anExampleWithOnlyTokensToAvoidHasAnEmptyReferenceAndTrains() {
        int[] tokens = model.tokenize("hello world, the model the model", true, false);
        byte[] roles = new byte[tokens.length];
        Arrays.fill(roles, tokens.length - 2, tokens.length, LoraTrainer.AVOID);
        LoraTrainer.Example e = new LoraTrainer.Example(tokens, roles, -1, new int[0]);
        for (int layers : new int[] {LoraTrainer.ALL_LAYERS, 1}) {
            try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, layers, 1, 2)) {
                LoraTrainer.Reference ref = t.reference(e);
                assertEquals(0, ref.keepIds().length, "no keep rows");
                float loss = t.step(List.of(e), List.of(ref), new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 1f), 1e-3f, 0f);
                assertTrue(Float.isFinite(loss) && loss > 0, "the unlikelihood term trains on it: " + loss);
            }
        }
    }

    @Test
    void lossIsTheMeanOfMinusLogOneMinusPOverTheAvoidRows() {
        LoraTrainer.Example e = looping();
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            double want = reference(e, t.logits(e.tokens(), true));
            assertTrue(want > 1e-4, "the tiny model gives the avoided tokens some probability: " + want);
            assertEquals(2.5 * want, t.evaluate(e, none, new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 2.5f)).loss(), 1e-4 * (1 + want));
            // the keep rows count only for the KL term: with its weight 0 and the unlikelihood off, nothing is left to train
            assertThrows(IllegalArgumentException.class, () -> t.evaluate(e, none, new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 0f)));
            // the KL's rows are the keep rows: adding it changes the loss by exactly its own term
            LoraTrainer.Reference ref = t.reference(e);
            LoraTrainer.Evaluation both = t.evaluate(e, ref, new LoraTrainer.Weights(0f, 0f, 0.1f, 1.5f, 2.5f));
            assertEquals(2.5 * want + 1.5 * both.kl(), both.loss(), 1e-4 * (1 + both.loss()));
        }
    }

    @Test
    void unlikelihoodGradientMatchesFiniteDifferences() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = looping();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference ref = t.reference(e);
            for (LoraTrainer.Weights w : List.of(new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 1f), new LoraTrainer.Weights(0f, 0f, 0.1f, 2f, 3f))) {
                for (String name : List.of("blk.0.attn_q.weight.lora_a", "blk.1.attn_v.weight.lora_b", "blk.0.ffn_down.weight.lora_b",
                        "blk.1.ffn_gate.weight.lora_a")) {
                    LoraTrainerTest.checkGradient(t, e, ref, w, name);
                }
            }
        }
    }

    @Test
    void trainingMakesTheAvoidedTokensLessLikelyWhereTheyWereAvoided() {
        LoraTrainer.Example e = looping();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2)) {
            LoraTrainer.Reference ref = t.reference(e);
            double before = reference(e, t.logits(e.tokens(), true));
            LoraTrainer.Weights w = new LoraTrainer.Weights(0f, 0f, 0.1f, 0f, 1f);
            for (int step = 0; step < 10; step++) {
                t.step(List.of(e), List.of(ref), w, 1e-2f, 0f);
            }
            double after = reference(e, t.logits(e.tokens(), true));
            assertTrue(after < 0.5 * before, "unlikelihood " + before + " -> " + after);
        }
    }
}
