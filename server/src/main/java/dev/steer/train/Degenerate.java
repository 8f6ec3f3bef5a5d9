package dev.steer.train;

import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Whether an answer has fallen into a loop: a model that over-learned a correction says it again and again
 * ("In short, in short, in short, ...", "Steer, Steer, Steer", "I am a small assistant that learns from your
 * corrections. I am a small assistant that learns from your corrections. ..."). Counted on words (case,
 * punctuation and digits ignored, so "Step 7: Clean the glass" and "Step 9: Clean the glass" are the same line):
 * <ul>
 *   <li>the same word three or more times in a row;</li>
 *   <li>the same six-word phrase three or more times in the answer;</li>
 *   <li>the same line of four or more words twice.</li>
 * </ul>
 * Six words, not four: a small model's ordinary 96-token list says "a gift that is" or "a car wash machine" in three
 * of its items without looping (bench/efficacy counted those as loops with four-word phrases, in base and adapter
 * answers alike), while every loop seen says a whole clause again. A list that says one item twice is a loop.
 */
final class Degenerate {
    static final int RUN = 3;
    static final int PHRASE = 6;
    static final int PHRASE_REPEATS = 3;
    static final int LINE_WORDS = 4;

    private Degenerate() {}

    static boolean is(String text) {
        // The run counts numbers as words ("Step 1 Step 2 Step 3" is no run); phrases and lines do not.
        String[] tokens = text.toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{N}']+", " ").strip().split(" ");
        int run = 1;
        for (int i = 1; i < tokens.length; i++) {
            run = !tokens[i].isEmpty() && tokens[i].equals(tokens[i - 1]) ? run + 1 : 1;
            if (run >= RUN) {
                return true;
            }
        }
        String[] w = words(text);
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i + PHRASE <= w.length; i++) {
            String phrase = String.join(" ", Arrays.copyOfRange(w, i, i + PHRASE));
            if (seen.merge(phrase, 1, Integer::sum) >= PHRASE_REPEATS) {
                return true;
            }
        }
        Set<String> lines = new HashSet<>();
        for (String line : text.split("\n")) {
            String[] lw = words(line);
            if (lw.length >= LINE_WORDS && !lines.add(String.join(" ", lw))) {
                return true;
            }
        }
        return false;
    }

    /** Lower-case words without punctuation or digits ("Step 7:" is the word "step"). */
    private static String[] words(String text) {
        String s = text.toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}']+", " ").strip();
        return s.isEmpty() ? new String[0] : s.split(" ");
    }
}
