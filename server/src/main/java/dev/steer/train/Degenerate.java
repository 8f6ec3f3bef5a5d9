package dev.steer.train;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Whether an answer has fallen into a loop: a model that over-learned a correction says it again and again
 * ("In short, in short, in short, ...", "Steer, Steer, Steer"). Counted on words (case and punctuation ignored): the
 * same word three or more times in a row, or the same four-word phrase three or more times in the answer.
 * Ordinary lists ("1. ... 2. ...") repeat a word or two, not a four-word phrase three times.
 */
final class Degenerate {
    static final int RUN = 3;
    static final int PHRASE = 4;
    static final int PHRASE_REPEATS = 3;

    private Degenerate() {}

    static boolean is(String text) {
        String[] w = text.toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{N}']+", " ").strip().split(" ");
        if (w.length < RUN) {
            return false;
        }
        int run = 1;
        for (int i = 1; i < w.length; i++) {
            run = !w[i].isEmpty() && w[i].equals(w[i - 1]) ? run + 1 : 1;
            if (run >= RUN) {
                return true;
            }
        }
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i + PHRASE <= w.length; i++) {
            String phrase = String.join(" ", java.util.Arrays.copyOfRange(w, i, i + PHRASE));
            if (seen.merge(phrase, 1, Integer::sum) >= PHRASE_REPEATS) {
                return true;
            }
        }
        return false;
    }
}
