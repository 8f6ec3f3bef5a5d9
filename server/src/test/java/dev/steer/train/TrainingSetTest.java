package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.steer.llama.LoraTrainer;
import dev.steer.steer.SteerRecord;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Steers -> examples: one answer packed once with each token's role, answers grouped, the split by answer. */
class TrainingSetTest {
    private static final byte N = LoraTrainer.NONE, K = LoraTrainer.KEEP, L = LoraTrainer.LEARN;

    private static SteerRecord steer(String id, String session, long at, int[] prompt, int[] accepted, int[] rejected, int[] correction,
                                     int[] continuation) {
        return new SteerRecord(id, session, "steer", "m", null, "{}", prompt, accepted.length, accepted, rejected, correction, "", "", "",
                List.of(), continuation, "", false, Set.of(), at, at);
    }

    @Test
    void oneSteerIsPromptKeptCorrectionContinuation() {
        SteerRecord r = steer("s1", "a", 1, new int[] {1, 2}, new int[] {10, 11}, new int[] {20, 21, 22}, new int[] {30, 31}, new int[] {40, 2});
        TrainingSet.Item i = TrainingSet.item(List.of(r));
        assertArrayEquals(new int[] {1, 2, 10, 11, 30, 31, 40, 2}, i.example().tokens());
        assertArrayEquals(new byte[] {N, N, K, K, L, L, K, K}, i.example().roles());
        assertEquals(4, i.example().fork());
        assertArrayEquals(new int[] {20, 21}, i.example().rejected(), "cut to the correction's length");
        assertArrayEquals(new int[] {1, 2, 10, 11}, i.forks().get(0).context());
    }

    @Test
    void tokensTheCorrectionSharesWithTheRejectedTextAreKeptNotLearned() {
        SteerRecord r = steer("s1", "a", 1, new int[] {1}, new int[] {10}, new int[] {30, 21}, new int[] {30, 31}, new int[0]);
        TrainingSet.Item i = TrainingSet.item(List.of(r));
        assertArrayEquals(new byte[] {N, K, K, L}, i.example().roles());
        assertEquals(3, i.example().fork());
        assertArrayEquals(new int[] {31}, i.forks().get(0).correction());
        assertNull(TrainingSet.item(List.of(steer("s2", "a", 1, new int[] {1}, new int[] {10}, new int[] {30, 31, 5}, new int[] {30, 31}, null))),
                "a correction that only repeats the model teaches nothing");
    }

    @Test
    void steersOfOneAnswerArePackedIntoOneExample() {
        int[] prompt = {1, 2};
        SteerRecord first = steer("s1", "a", 1, prompt, new int[] {10}, new int[] {20, 21}, new int[] {30}, new int[] {11, 12});
        // The second fork lies after the first correction: its kept output holds that correction and part of its continuation.
        SteerRecord second = steer("s2", "a", 2, prompt, new int[] {10, 30, 11}, new int[] {12, 13}, new int[] {31, 32}, new int[] {14, 3});
        // Another session's steer stays apart; a steer that cut back into the first correction starts its own answer.
        SteerRecord other = steer("s3", "b", 3, prompt, new int[] {10}, new int[] {20}, new int[] {30}, new int[0]);
        SteerRecord cutBack = steer("s4", "a", 4, prompt, new int[] {}, new int[] {10, 31}, new int[] {33}, new int[0]);
        List<List<SteerRecord>> answers = TrainingSet.answers(List.of(cutBack, other, second, first));
        assertEquals(List.of(List.of("s1", "s2"), List.of("s4"), List.of("s3")),
                answers.stream().map(a -> a.stream().map(SteerRecord::id).toList()).toList());
        TrainingSet.Item i = TrainingSet.item(answers.get(0));
        assertArrayEquals(new int[] {1, 2, 10, 30, 11, 31, 32, 14, 3}, i.example().tokens());
        assertArrayEquals(new byte[] {N, N, K, L, K, L, L, K, K}, i.example().roles());
        assertEquals(5, i.example().fork(), "the last correction's fork");
        assertArrayEquals(new int[] {12, 13}, i.example().rejected());
        assertEquals(2, i.forks().size());
        assertArrayEquals(new int[] {1, 2, 10, 30, 11}, i.forks().get(1).context());
        assertEquals(List.of("s1", "s2"), i.steerIds());
    }

    @Test
    void theSplitIsByAnswerAndSeeded() {
        List<SteerRecord> rs = new java.util.ArrayList<>();
        for (int s = 0; s < 10; s++) {
            rs.add(steer("s" + s + "a", "sess" + s, 2L * s, new int[] {1}, new int[] {10}, new int[] {20}, new int[] {30}, new int[] {11}));
            rs.add(steer("s" + s + "b", "sess" + s, 2L * s + 1, new int[] {1}, new int[] {10, 30, 11}, new int[] {21}, new int[] {31}, new int[0]));
        }
        TrainingSet a = TrainingSet.split(rs, 0.2, 7), b = TrainingSet.split(rs, 0.2, 7);
        assertEquals(8, a.train().size());
        assertEquals(2, a.heldOut().size());
        assertEquals(a.heldOut().stream().map(TrainingSet.Item::steerIds).toList(), b.heldOut().stream().map(TrainingSet.Item::steerIds).toList());
        a.heldOut().forEach(h -> assertEquals(2, h.steerIds().size(), "both steers of an answer on one side"));
    }
}
