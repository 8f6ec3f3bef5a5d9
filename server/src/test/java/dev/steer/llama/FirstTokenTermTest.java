package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The first-token term (weight {@code first}): the cross-entropy on each correction's first word once more (its first
 * token that is not only whitespace), the mean over corrections. On the tiny llama: the loss against a reference
 * written out here from the logits (which rows count is the masking: one token of each run of learn tokens, a leading
 * line break passed over, not the rest of a correction, not kept text), its gradient entry by entry against the
 * correction term's on an example that learns only those tokens (the same rows, the same mean), and against finite
 * differences.
 */
class FirstTokenTermTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    /** prompt | kept | a correction | kept | a second correction | kept: two corrections of several tokens each. */
    private LoraTrainer.Example twoCorrections() {
        String[] parts = {"hello world,", " the model said", " a token here", " and went on", "\n\nwith another correction", " then the end"};
        byte[] partRoles = {LoraTrainer.NONE, LoraTrainer.KEEP, LoraTrainer.LEARN, LoraTrainer.KEEP, LoraTrainer.LEARN, LoraTrainer.KEEP};
        int[][] tokens = new int[parts.length][];
        int n = 0;
        for (int i = 0; i < parts.length; i++) {
            tokens[i] = model.tokenize(parts[i], i == 0, false);
            n += tokens[i].length;
        }
        int[] all = new int[n];
        byte[] roles = new byte[n];
        int at = 0;
        for (int i = 0; i < parts.length; i++) {
            System.arraycopy(tokens[i], 0, all, at, tokens[i].length);
            Arrays.fill(roles, at, at + tokens[i].length, partRoles[i]);
            at += tokens[i].length;
        }
        return new LoraTrainer.Example(all, roles, -1, new int[0]);
    }

    /** Whether a token is only whitespace. */
    private boolean blank(int token) {
        String s = new String(model.tokenBytes(token, true), java.nio.charset.StandardCharsets.UTF_8);
        return !s.isEmpty() && s.chars().allMatch(c -> c == ' ' || c == '\n' || c == '\t' || c == '\r');
    }

    /** Per token: whether the term weighs it (each run of learn tokens' first word, or its first token if all are blank). */
    private boolean[] firstWords(LoraTrainer.Example e) {
        boolean[] out = new boolean[e.tokens().length];
        for (int i = 1; i < e.tokens().length; ) {
            if (e.roles()[i] != LoraTrainer.LEARN) {
                i++;
                continue;
            }
            int end = i;
            while (end < e.tokens().length && e.roles()[end] == LoraTrainer.LEARN) {
                end++;
            }
            int word = i;
            while (word < end && blank(e.tokens()[word])) {
                word++;
            }
            out[word == end ? i : word] = true;
            i = end;
        }
        return out;
    }

    /** The same tokens with only each correction's first word learned (the rest of each correction kept). */
    private LoraTrainer.Example firstWordsOnly(LoraTrainer.Example e) {
        boolean[] first = firstWords(e);
        byte[] roles = e.roles().clone();
        for (int i = 1; i < roles.length; i++) {
            if (e.roles()[i] == LoraTrainer.LEARN && !first[i]) {
                roles[i] = LoraTrainer.KEEP;
            }
        }
        return new LoraTrainer.Example(e.tokens(), roles, -1, new int[0]);
    }

    private LoraTrainer trainer(int seed) {
        LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, seed, 2);
        LoraTrainerTest.perturbB(t, seed + 100, 0.05f);
        return t;
    }

    private static LoraTrainer.Weights first(float nll, float first) {
        return new LoraTrainer.Weights(nll, 0f, 0.1f, 0f, 0f, 0f, first);
    }

    /** Mean of -log p(token) over the learn tokens, or over each correction's first word only. */
    private double reference(LoraTrainer.Example e, float[] logits, boolean firstOnly) {
        boolean[] first = firstWords(e);
        double sum = 0;
        int n = 0;
        for (int i = 1; i < e.tokens().length; i++) {
            boolean learn = e.roles()[i] == LoraTrainer.LEARN;
            if (learn && (!firstOnly || first[i])) {
                sum -= LoraTrainerTest.logSoftmax(logits, i - 1, vocab)[e.tokens()[i]];
                n++;
            }
        }
        return sum / n;
    }

    @Test
    void lossIsTheMeanCrossEntropyOfEachCorrectionsFirstToken() {
        LoraTrainer.Example e = twoCorrections();
        assertTrue(e.count(LoraTrainer.LEARN) >= 5, "corrections of several tokens: " + e.count(LoraTrainer.LEARN));
        boolean[] first = firstWords(e);
        int lastRunStart = -1;
        for (int i = 1; i < e.tokens().length; i++) {
            if (e.roles()[i] == LoraTrainer.LEARN && e.roles()[i - 1] != LoraTrainer.LEARN) {
                lastRunStart = i;
            }
        }
        assertTrue(blank(e.tokens()[lastRunStart]) && !first[lastRunStart], "the second correction's line break is passed over");
        try (LoraTrainer t = trainer(1)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            float[] logits = t.logits(e.tokens(), true);
            double firsts = reference(e, logits, true), all = reference(e, logits, false);
            assertTrue(Math.abs(firsts - all) > 1e-3, "the two means differ on this example: " + firsts + " vs " + all);
            assertEquals(1.5 * firsts, t.evaluate(e, none, first(0f, 1.5f)).loss(), 1e-4 * (1 + firsts));
            // beside the correction term, it adds exactly its own part
            assertEquals(all + 1.5 * firsts, t.evaluate(e, none, first(1f, 1.5f)).loss(), 1e-4 * (1 + all + firsts));
            // weight 0: the correction term alone, as before the term existed
            assertEquals(all, t.evaluate(e, none, first(1f, 0f)).loss(), 1e-4 * (1 + all));
        }
    }

    @Test
    void gradientIsTheCorrectionTermsOnTheFirstTokensEntryByEntry() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = twoCorrections(), firsts = firstWordsOnly(e);
        try (LoraTrainer t = trainer(2)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            for (String name : List.of("blk.0.attn_q.weight.lora_a", "blk.1.attn_v.weight.lora_b", "blk.1.ffn_down.weight.lora_b")) {
                float[] got = t.gradient(e, none, first(0f, 2f), name);
                float[] want = t.gradient(firsts, none, first(2f, 0f), name);
                assertEquals(want.length, got.length);
                double norm = 0;
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 1e-5 + 1e-3 * Math.abs(want[i]), name + "[" + i + "]");
                    norm += want[i] * want[i];
                }
                assertTrue(norm > 0, name + ": a gradient to compare");
            }
        }
    }

    @Test
    void gradientMatchesFiniteDifferences() {
        TestModels.assumeCpuExactness();
        LoraTrainer.Example e = twoCorrections();
        try (LoraTrainer t = trainer(4)) {
            LoraTrainer.Reference none = new LoraTrainer.Reference(0f, 0f);
            for (LoraTrainer.Weights w : List.of(first(0f, 1f), first(1f, 3f))) {
                for (String name : List.of("blk.0.attn_k.weight.lora_a", "blk.1.attn_output.weight.lora_b", "blk.0.ffn_up.weight.lora_b")) {
                    LoraTrainerTest.checkGradient(t, e, none, w, name);
                }
            }
        }
    }
}
