package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** How many CPU threads a job trains with: {@code --train-threads}, and whether the engine is serving anyone. */
class TrainingThreadsTest {
    @Test
    void theDefaultTakesHalfTheCoresBesideServingAndAllOfThemAlone() {
        JobRunner.Threads t = JobRunner.Threads.of(0, 2);
        assertEquals(1, t.with(1));   // one generation running or waiting
        assertEquals(1, t.with(5));
        assertEquals(2, t.with(0));   // nothing to serve
        JobRunner.Threads big = JobRunner.Threads.of(0, 16);
        assertEquals(8, big.with(3));
        assertEquals(16, big.with(0));
        JobRunner.Threads one = JobRunner.Threads.of(0, 1);
        assertEquals(1, one.with(0));
        assertEquals(1, one.with(2));
    }

    @Test
    void aCountSetByTheOperatorHoldsWhateverTheLoad() {
        JobRunner.Threads t = JobRunner.Threads.of(3, 16);
        assertEquals(3, t.with(0));
        assertEquals(3, t.with(7));
    }

    @Test
    void nonsenseCountsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new JobRunner.Threads(0, 2));
        assertThrows(IllegalArgumentException.class, () -> new JobRunner.Threads(4, 2));
    }
}
