package dev.steer.train;

import static dev.steer.llama.LoraTrainer.AVOID;
import static dev.steer.llama.LoraTrainer.KEEP;
import static dev.steer.llama.LoraTrainer.NONE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.steer.llama.LoraTrainer;
import org.junit.jupiter.api.Test;

/** The roles of the adapter's own text: kept up to its first repetition of the answer, that repetition avoided. */
class RepeatsTest {
    // prompt 1 2 | answer 10 11 12 13 14 | own text from index 7
    private static final int[] ANSWER = {1, 2, 10, 11, 12, 13, 14};

    private static int[] with(int... own) {
        int[] t = java.util.Arrays.copyOf(ANSWER, ANSWER.length + own.length);
        System.arraycopy(own, 0, t, ANSWER.length, own.length);
        return t;
    }

    @Test
    void ownTextThatSaysSomethingNewIsKept() {
        byte[] roles = Repeats.ownTextRoles(with(20, 11, 12, 13, 21, 22), 2, 7, true);  // 3 of a run again: not 4
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, NONE, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP}, roles);
    }

    @Test
    void theFirstRepeatedRunIsAvoidedAfterItsFirstTokenAndTheRestLeftOut() {
        // own text: 20, then 11 12 13 14 (a run of the answer): 12 13 14 copy what followed 11, then more text
        byte[] roles = Repeats.ownTextRoles(with(20, 11, 12, 13, 14, 21, 11, 12, 13, 14), 2, 7, true);
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, NONE,
            KEEP, KEEP, AVOID, AVOID, AVOID, NONE, NONE, NONE, NONE, NONE}, roles);
    }

    @Test
    void aRunThatBeginsInTheAnswerAndEndsInTheOwnTextMarksOnlyTheOwnTokens() {
        // three tokens said again (11 12 13, the last one own text) are no run of four
        byte[] roles = Repeats.ownTextRoles(new int[] {1, 10, 11, 12, 13, 14, 11, 12, 13}, 1, 8, true);
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, KEEP}, roles);
        // 10 11 12 13 again, its last two tokens own text: only those are avoided
        byte[] four = Repeats.ownTextRoles(new int[] {1, 10, 11, 12, 13, 10, 11, 12, 13}, 1, 7, true);
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, NONE, AVOID, AVOID}, four);
    }

    @Test
    void thePromptsWordsAndRepeatsWithinTheApprovedAnswerDoNotCount() {
        // the prompt says 10 11 12 13; the answer repeats itself (approved by the person); own text says 10 11 12 13
        int[] tokens = {10, 11, 12, 13, 30, 31, 32, 33, 30, 31, 32, 33, 10, 11, 12, 13};
        byte[] roles = Repeats.ownTextRoles(tokens, 4, 12, true);
        for (int i = 12; i < 16; i++) {
            org.junit.jupiter.api.Assertions.assertEquals(KEEP, roles[i], "own token " + i);
        }
    }

    @Test
    void withoutTheTermAllOwnTextIsKept() {
        byte[] roles = Repeats.ownTextRoles(with(20, 11, 12, 13, 14), 2, 7, false);
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, NONE, KEEP, KEEP, KEEP, KEEP, KEEP}, roles);
        assertThrows(IllegalArgumentException.class, () -> Repeats.ownTextRoles(ANSWER, 5, 3, true));
        LoraTrainer.Example e = JobRunner.ownExample(new int[] {1, 2, 10, 11, 12, 13}, 2, new int[] {10, 11, 12, 13}, true);
        assertArrayEquals(new byte[] {NONE, NONE, NONE, NONE, NONE, NONE, KEEP, AVOID, AVOID, AVOID}, e.roles());
    }
}
