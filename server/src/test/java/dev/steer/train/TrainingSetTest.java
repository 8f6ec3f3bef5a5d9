package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    private static SteerRecord stop(String id, String session, long at, int[] prompt, int[] accepted, int[] rejected) {
        return new SteerRecord(id, session, "rejection", "m", null, "{}", prompt, accepted.length, accepted, rejected, new int[0], "", "", "",
                null, null, null, false, Set.of(), at, at);
    }

    @Test
    void oneSteerIsPromptKeptCorrectionContinuation() {
        SteerRecord r = steer("s1", "a", 1, new int[] {1, 2}, new int[] {10, 11}, new int[] {20, 21, 22}, new int[] {30, 31}, new int[] {40, 2});
        TrainingSet.Item i = TrainingSet.item(List.of(r), TrainingSet.StopReading.IGNORE);
        assertArrayEquals(new int[] {1, 2, 10, 11, 30, 31, 40, 2}, i.example().tokens());
        assertArrayEquals(new byte[] {N, N, K, K, L, L, K, K}, i.example().roles());
        assertEquals(4, i.example().fork());
        assertArrayEquals(new int[] {20, 21}, i.example().rejected(), "cut to the correction's length");
        assertArrayEquals(new int[] {1, 2, 10, 11}, i.forks().get(0).context());
    }

    @Test
    void tokensTheCorrectionSharesWithTheRejectedTextAreKeptNotLearned() {
        SteerRecord r = steer("s1", "a", 1, new int[] {1}, new int[] {10}, new int[] {30, 21}, new int[] {30, 31}, new int[0]);
        TrainingSet.Item i = TrainingSet.item(List.of(r), TrainingSet.StopReading.IGNORE);
        assertArrayEquals(new byte[] {N, K, K, L}, i.example().roles());
        assertEquals(3, i.example().fork());
        assertArrayEquals(new int[] {31}, i.forks().get(0).correction());
        assertNull(TrainingSet.item(List.of(steer("s2", "a", 1, new int[] {1}, new int[] {10}, new int[] {30, 31, 5}, new int[] {30, 31}, null)), TrainingSet.StopReading.IGNORE),
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
        List<List<SteerRecord>> answers = TrainingSet.answers(List.of(cutBack, other, second, first), TrainingSet.StopReading.IGNORE);
        assertEquals(List.of(List.of("s1", "s2"), List.of("s4"), List.of("s3")),
                answers.stream().map(a -> a.stream().map(SteerRecord::id).toList()).toList());
        TrainingSet.Item i = TrainingSet.item(answers.get(0), TrainingSet.StopReading.IGNORE);
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
        TrainingSet a = TrainingSet.split(rs, 0.2, 7, TrainingSet.StopReading.IGNORE), b = TrainingSet.split(rs, 0.2, 7, TrainingSet.StopReading.IGNORE);
        assertEquals(8, a.train().size());
        assertEquals(2, a.heldOut().size());
        assertEquals(a.heldOut().stream().map(TrainingSet.Item::steerIds).toList(), b.heldOut().stream().map(TrainingSet.Item::steerIds).toList());
        a.heldOut().forEach(h -> assertEquals(2, h.steerIds().size(), "both steers of an answer on one side"));
    }

    @Test
    void theWholeContinuationTrainsUnderTheKlTermToItsEnd() {
        int[] longContinuation = java.util.stream.IntStream.range(100, 400).toArray();
        SteerRecord r = steer("s1", "a", 1, new int[] {1}, new int[] {10}, new int[] {20}, new int[] {30}, longContinuation);
        LoraTrainer.Example e = TrainingSet.item(List.of(r), TrainingSet.StopReading.IGNORE).example();
        assertEquals(3 + longContinuation.length, e.tokens().length, "prompt, kept, correction, then every continuation token");
        assertArrayEquals(longContinuation, java.util.Arrays.copyOfRange(e.tokens(), 3, e.tokens().length));
        for (int i = 3; i < e.tokens().length; i++) {
            assertEquals(LoraTrainer.KEEP, e.roles()[i], "continuation token " + i + " is kept under the KL term");
        }
        assertEquals(LoraTrainer.LEARN, e.roles()[2], "the correction is learned");
        assertNull(TrainingSet.item(List.of(steer("s2", "a", 1, new int[] {1}, new int[] {10}, new int[] {30}, new int[] {30}, null)), TrainingSet.StopReading.IGNORE),
                "a correction equal to the rejected text, with no continuation, is no example");
    }

    @Test
    void oneAnswerIsNeverHeldOutAndAFractionOfZeroHoldsNone() {
        List<SteerRecord> two = List.of(
                steer("s1", "a", 1, new int[] {1}, new int[] {10}, new int[] {20}, new int[] {30}, new int[0]),
                steer("s2", "b", 2, new int[] {1}, new int[] {10}, new int[] {20}, new int[] {31}, new int[0]));
        assertEquals(0, TrainingSet.split(two.subList(0, 1), 0.5, 1, TrainingSet.StopReading.IGNORE).heldOut().size(), "the only answer trains");
        assertEquals(1, TrainingSet.split(two.subList(0, 1), 0.5, 1, TrainingSet.StopReading.IGNORE).train().size());
        assertEquals(0, TrainingSet.split(two, 0.0, 1, TrainingSet.StopReading.IGNORE).heldOut().size());
        TrainingSet most = TrainingSet.split(two, 0.9, 1, TrainingSet.StopReading.IGNORE);
        assertEquals(1, most.train().size(), "at least one answer always trains");
        assertEquals(1, most.heldOut().size(), "and at least one is held out once there are two");
    }

    @Test
    void batchesAreFullGroupsOfSimilarLengthInASeededOrder() {
        List<String> items = List.of("aaaaaaa", "a", "aaaaaa", "aa", "aaaaa", "aaa", "aaaa");
        List<List<String>> b = TrainingSet.batches(items, 3, String::length, new java.util.Random(5));
        assertEquals(3, b.size(), "7 examples in batches of 3: the last is filled up");
        b.forEach(batch -> assertEquals(3, batch.size(), "every batch has the same size"));
        List<Set<Integer>> lengths = b.stream().map(batch -> Set.copyOf(batch.stream().map(String::length).toList())).toList();
        assertEquals(Set.of(Set.of(1, 2, 3), Set.of(4, 5, 6), Set.of(7, 1, 2)), Set.copyOf(lengths),
                "sorted by length, the short last batch filled with the shortest from the start");
        assertEquals(b, TrainingSet.batches(items, 3, String::length, new java.util.Random(5)), "the same seed, the same order");
    }

    private static final int END = 2;
    private static final TrainingSet.StopReading AT_END = new TrainingSet.StopReading(Hyperparameters.Stops.END, END);
    private static final TrainingSet.StopReading AVOID = new TrainingSet.StopReading(Hyperparameters.Stops.AVOID, END);
    private static final byte A = LoraTrainer.AVOID;

    @Test
    void aStopThatEndsAnAnswerTeachesTheEndOfTurnThere() {
        int[] prompt = {1, 5};
        SteerRecord steer = steer("s1", "a", 1, prompt, new int[] {10}, new int[] {20, 21}, new int[] {30, 31}, new int[] {40, 41, 42, 43});
        // The person let the continuation run, then stopped it where it began to repeat itself (after 40, 41).
        SteerRecord stop = stop("s2", "a", 2, prompt, new int[] {10, 30, 31, 40, 41}, new int[] {42, 43});
        List<List<SteerRecord>> answers = TrainingSet.answers(List.of(stop, steer), AT_END);
        assertEquals(List.of(List.of("s1", "s2")), answers.stream().map(a -> a.stream().map(SteerRecord::id).toList()).toList(),
                "the stop joins the answer it cut");
        TrainingSet.Item i = TrainingSet.item(answers.get(0), AT_END);
        assertArrayEquals(new int[] {1, 5, 10, 30, 31, 40, 41, END}, i.example().tokens(), "the answer ends where the person stopped it");
        assertArrayEquals(new byte[] {N, N, K, L, L, K, K, L}, i.example().roles());
        assertEquals(7, i.example().fork(), "the preference is the stop's: the end of turn over the first token rejected");
        assertArrayEquals(new int[] {42}, i.example().rejected());
        assertEquals(2, i.forks().size());
        assertArrayEquals(new int[] {1, 5, 10, 30, 31, 40, 41}, i.forks().get(1).context());
        assertArrayEquals(new int[] {END}, i.forks().get(1).correction());

        // Stops ignored (the default), the stop is left out: the steer alone, as before.
        List<List<SteerRecord>> without = TrainingSet.answers(List.of(stop, steer), TrainingSet.StopReading.IGNORE);
        assertEquals(List.of(List.of("s1")), without.stream().map(a -> a.stream().map(SteerRecord::id).toList()).toList());
        assertArrayEquals(new int[] {1, 5, 10, 30, 31, 40, 41, 42, 43}, TrainingSet.item(without.get(0), TrainingSet.StopReading.IGNORE).example().tokens());
    }

    @Test
    void aStopAloneTeachesTheEndButNotOneThatKeptOrRejectedNothing() {
        TrainingSet.Item i = TrainingSet.item(List.of(stop("s1", "a", 1, new int[] {1}, new int[] {10, 11}, new int[] {12})), AT_END);
        assertArrayEquals(new int[] {1, 10, 11, END}, i.example().tokens());
        assertArrayEquals(new byte[] {N, K, K, L}, i.example().roles());
        List<SteerRecord> noTeaching = List.of(
                stop("s2", "b", 2, new int[] {1}, new int[0], new int[] {10, 11}),      // stopped before anything: gave up
                stop("s3", "c", 3, new int[] {1}, new int[] {10, 11}, new int[0]),      // nothing rejected
                stop("s4", "d", 4, new int[] {1}, new int[] {10, 11}, new int[] {END})); // the model was ending there anyway
        assertEquals(List.of(), TrainingSet.answers(noTeaching, AT_END));
        assertEquals(0, TrainingSet.split(noTeaching, 0, 1, AT_END).train().size());
    }

    @Test
    void aStopThatALaterSteerWentPastIsSuperseded() {
        int[] prompt = {1};
        SteerRecord stop = stop("s1", "a", 1, prompt, new int[] {10, 11}, new int[] {12, 13});
        // The person then steered at the same place: that text, not the end, is what the answer says there.
        SteerRecord steer = steer("s2", "a", 2, prompt, new int[] {10, 11}, new int[] {12, 13}, new int[] {30}, new int[] {END});
        List<List<SteerRecord>> answers = TrainingSet.answers(List.of(steer, stop), AT_END);
        assertEquals(1, answers.size());
        TrainingSet.Item i = TrainingSet.item(answers.get(0), AT_END);
        assertArrayEquals(new int[] {1, 10, 11, 30, END}, i.example().tokens());
        assertArrayEquals(new byte[] {N, K, K, L, K}, i.example().roles(), "only the correction is learned; the end is the model's own");
        assertEquals(1, i.forks().size());
        assertEquals(List.of("s1", "s2"), i.steerIds());

        // A steer further on, in the text the stop had rejected: the person took it back; the end is not learned there.
        SteerRecord later = steer("s3", "a", 3, prompt, new int[] {10, 11, 12}, new int[] {13}, new int[] {31}, new int[] {END});
        TrainingSet.Item j = TrainingSet.item(TrainingSet.answers(List.of(later, stop), AT_END).get(0), AT_END);
        assertArrayEquals(new int[] {1, 10, 11, 12, 31, END}, j.example().tokens());
        assertArrayEquals(new byte[] {N, K, K, K, L, K}, j.example().roles());
        assertEquals(List.of("s1", "s3"), j.steerIds());
    }

    @Test
    void aStopReadAsAvoidMakesTheFirstRejectedTokenUnlikelyThereAndLearnsNoEnd() {
        int[] prompt = {1, 5};
        SteerRecord steer = steer("s1", "a", 1, prompt, new int[] {10}, new int[] {20, 21}, new int[] {30, 31}, new int[] {40, 41, 42, 43});
        SteerRecord stop = stop("s2", "a", 2, prompt, new int[] {10, 30, 31, 40, 41}, new int[] {42, 43});
        List<List<SteerRecord>> answers = TrainingSet.answers(List.of(stop, steer), AVOID);
        assertEquals(List.of(List.of("s1", "s2")), answers.stream().map(a -> a.stream().map(SteerRecord::id).toList()).toList());
        TrainingSet.Item i = TrainingSet.item(answers.get(0), AVOID);
        assertArrayEquals(new int[] {1, 5, 10, 30, 31, 40, 41, 42}, i.example().tokens(), "the kept text, then the token the person stopped");
        assertArrayEquals(new byte[] {N, N, K, L, L, K, K, A}, i.example().roles(), "no end of turn is learned; the rejected token is avoided");
        assertEquals(1, i.forks().size(), "the stop is no fork: the gate cannot replay an avoided token");
        assertEquals(3, i.example().fork(), "the preference stays the correction's");
        assertArrayEquals(new int[] {20, 21}, i.example().rejected());

        // A stop alone trains, and is never held out (no fork to replay); one that kept or rejected nothing teaches nothing.
        SteerRecord alone = stop("s3", "b", 3, new int[] {1}, new int[] {10, 11}, new int[] {12, 13});
        TrainingSet.Item j = TrainingSet.item(List.of(alone), AVOID);
        assertArrayEquals(new int[] {1, 10, 11, 12}, j.example().tokens());
        assertArrayEquals(new byte[] {N, K, K, A}, j.example().roles());
        assertEquals(-1, j.example().fork());
        SteerRecord other = steer("s6", "e", 6, new int[] {1}, new int[] {10}, new int[] {20}, new int[] {30}, null);
        List<SteerRecord> all = List.of(steer, stop, alone, other, stop("s4", "c", 4, new int[] {1}, new int[0], new int[] {10}),
                stop("s5", "d", 5, new int[] {1}, new int[] {10}, new int[0]),
                stop("s7", "f", 7, new int[] {1}, new int[] {10}, new int[] {END}));  // the model was ending there: no end to avoid
        for (long seed = 1; seed <= 5; seed++) {
            TrainingSet set = TrainingSet.split(all, 0.9, seed, AVOID);
            assertEquals(1, set.heldOut().size(), "of the two answers with a fork, one is held out");
            assertEquals(2, set.train().size(), "the other and the stop alone train; the stops that teach nothing are left out");
            assertTrue(set.train().stream().anyMatch(t -> t.steerId().equals("s3")), "the stop alone trains, whatever the seed");
        }
    }
}
