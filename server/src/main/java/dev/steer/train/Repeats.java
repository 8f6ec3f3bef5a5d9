package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Where the adapter's own text starts saying again what its answer already said: the roles of an on-policy example.
 *
 * <p>A habit learned from a few steers raises its phrase everywhere, right after itself too ("I am Steer, a small
 * assistant that learns from your corrections. I am a small assistant that ..."). Kept under the KL term, such a loop
 * teaches nothing useful: once a phrase is in the context the base model copies it as well. So the own text is kept
 * up to the first run of {@link #N} tokens that appeared earlier in the answer; the tokens of that run after its first
 * are the ones the model copied, and are {@link LoraTrainer#AVOID} (the unlikelihood term makes them unlikely there,
 * as Welleck et al. 2019 do for repeated n-grams); what follows is in a loop and is not trained on.
 */
final class Repeats {
    /** Tokens in a repeated run: four, as Welleck et al.; shorter runs recur in ordinary text ("of the"). */
    static final int N = 4;

    private Repeats() {}

    /** Whether the example has a token to avoid. */
    static boolean avoids(LoraTrainer.Example e) {
        for (byte r : e.roles()) {
            if (r == LoraTrainer.AVOID) {
                return true;
            }
        }
        return false;
    }

    /**
     * @param tokens      prompt, the answer so far, then the adapter's own text
     * @param answerStart where the answer begins (the prompt's own words are no repetition)
     * @param ownStart    where the adapter's own text begins
     * @param markRepeats false: keep all of the own text (no unlikelihood term)
     */
    static byte[] ownTextRoles(int[] tokens, int answerStart, int ownStart, boolean markRepeats) {
        if (answerStart < 0 || answerStart > ownStart || ownStart > tokens.length) {
            throw new IllegalArgumentException("need 0 <= answerStart <= ownStart <= tokens");
        }
        byte[] roles = new byte[tokens.length];
        Arrays.fill(roles, ownStart, tokens.length, LoraTrainer.KEEP);
        if (!markRepeats) {
            return roles;
        }
        Set<List<Integer>> seen = new HashSet<>();
        for (int end = answerStart + N; end <= tokens.length; end++) {  // the run tokens[end - N, end)
            List<Integer> run = Arrays.stream(tokens, end - N, end).boxed().toList();
            if (!seen.add(run) && end > ownStart) {
                for (int i = Math.max(ownStart, end - N + 1); i < end; i++) {
                    roles[i] = LoraTrainer.AVOID;
                }
                Arrays.fill(roles, end, tokens.length, LoraTrainer.NONE);
                return roles;
            }
        }
        return roles;
    }
}
