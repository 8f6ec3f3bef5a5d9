package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.TestModels;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link AgreedTokens}: which correction tokens stay learned, against the argmax of the base model's full logits
 * row by row (a correction built to hold both kinds), and that the reference it builds from one forward is the one
 * the trainer computes for the reshaped example.
 */
class AgreedTokensTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final int vocab = model.vocabSize();

    private static int argmax(float[] logits, int row, int vocab) {
        int best = 0;
        for (int v = 1; v < vocab; v++) {
            if (logits[row * vocab + v] > logits[row * vocab + best]) {
                best = v;
            }
        }
        return best;
    }

    /** {@code tokens} followed by the base model's greedy token, and that token. */
    private int[] greedyNext(LoraTrainer t, int[] tokens) {
        float[] logits = t.logits(tokens, false);
        int[] out = Arrays.copyOf(tokens, tokens.length + 1);
        out[tokens.length] = argmax(logits, tokens.length - 1, vocab);
        return out;
    }

    /** {@code tokens} followed by a token the base model does not choose next. */
    private int[] otherNext(LoraTrainer t, int[] tokens) {
        float[] logits = t.logits(tokens, false);
        int[] out = Arrays.copyOf(tokens, tokens.length + 1);
        out[tokens.length] = (argmax(logits, tokens.length - 1, vocab) + 7) % vocab;
        return out;
    }

    /**
     * prompt | approved (keep) | a correction of 7 tokens: one the base would not write, 3 it would, one it would
     * not, 2 it would (learn) | a continuation (keep).
     */
    private LoraTrainer.Example example(LoraTrainer t) {
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] tokens = concat(prompt, model.tokenize(" the model said", false, false));
        int fork = tokens.length;
        for (boolean greedy : new boolean[] {false, true, true, true, false, true, true}) {
            tokens = greedy ? greedyNext(t, tokens) : otherNext(t, tokens);
        }
        int end = tokens.length;
        tokens = concat(tokens, model.tokenize(" and then more", false, false));
        byte[] roles = new byte[tokens.length];
        Arrays.fill(roles, prompt.length, tokens.length, LoraTrainer.KEEP);
        Arrays.fill(roles, fork, end, LoraTrainer.LEARN);
        return new LoraTrainer.Example(tokens, roles, -1, new int[0]);
    }

    @Test
    void correctionTokensTheBaseWouldWriteAreKeptTheOthersLearned() {
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2)) {
            perturbB(t);  // the adapter on must not matter: the base decides
            LoraTrainer.Example e = example(t);
            AgreedTokens.Reshaped r = AgreedTokens.keep(t, e, vocab);

            float[] base = t.logits(e.tokens(), false);
            byte[] expected = e.roles().clone();
            for (int i = 1; i < expected.length; i++) {
                if (expected[i] == LoraTrainer.LEARN && argmax(base, i - 1, vocab) == e.tokens()[i]) {
                    expected[i] = LoraTrainer.KEEP;
                }
            }
            assertArrayEquals(expected, r.example().roles());
            assertEquals(5, r.agreed());
            assertEquals(2, r.learned());
            assertArrayEquals(e.tokens(), r.example().tokens());
        }
    }

    @Test
    void theReferenceFromOneForwardIsTheReshapedExamplesReference() {
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 3, 2)) {
            AgreedTokens.Reshaped r = AgreedTokens.keep(t, example(t), vocab);
            LoraTrainer.Reference direct = t.reference(r.example());
            assertArrayEquals(direct.keepIds(), r.reference().keepIds());
            assertEquals(direct.keepProbs().length, r.reference().keepProbs().length);
            for (int i = 0; i < direct.keepProbs().length; i++) {
                assertEquals(direct.keepProbs()[i], r.reference().keepProbs()[i], 1e-7, "probability " + i);
            }
            assertEquals(direct.keepEntropy(), r.reference().keepEntropy(), 1e-4 * Math.abs(direct.keepEntropy()));
        }
    }

    /** Every LoRA B entry random (a fresh adapter's are 0, which would equal the base). */
    private void perturbB(LoraTrainer t) {
        java.util.Random rnd = new java.util.Random(11);
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
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
