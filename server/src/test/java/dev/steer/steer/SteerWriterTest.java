package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The store-writer thread: submit never waits, writes run in order, a failure is its write's only, close runs what was handed over. */
@Timeout(30)
class SteerWriterTest {
    @Test
    void submitReturnsAtOnceWhileAWriteIsStuckAndWritesRunInOrder() throws Exception {
        List<Integer> ran = new ArrayList<>();
        CountDownLatch release = new CountDownLatch(1);
        try (SteerWriter w = new SteerWriter()) {
            CompletableFuture<Void> stuck = w.submit(() -> {
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                ran.add(0);
            });
            long t0 = System.nanoTime();
            List<CompletableFuture<Void>> later = new ArrayList<>();
            for (int i = 1; i <= 100; i++) {
                int n = i;
                later.add(w.submit(() -> ran.add(n)));
            }
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "handing writes over does not wait for the stuck one");
            assertFalse(stuck.isDone());
            assertFalse(later.get(99).isDone());
            release.countDown();
            later.get(99).get(10, TimeUnit.SECONDS);
            List<Integer> expected = new ArrayList<>();
            for (int i = 0; i <= 100; i++) {
                expected.add(i);
            }
            assertEquals(expected, ran, "oldest first");
        }
    }

    @Test
    void aFailedWriteFailsItsFutureOnlyAndCloseRunsWhatWasHandedOver() throws Exception {
        SteerWriter w = new SteerWriter();
        CompletableFuture<Void> failed = w.submit(() -> {
            throw new IllegalStateException("disk full (test)");
        });
        CompletableFuture<Void> oom = w.submit(() -> {
            throw new OutOfMemoryError("test");
        });
        boolean[] after = new boolean[1];
        CompletableFuture<Void> next = w.submit(() -> after[0] = true);
        w.close();
        ExecutionException e = assertThrows(ExecutionException.class, () -> failed.get(1, TimeUnit.SECONDS));
        assertTrue(e.getCause().getMessage().contains("disk full"));
        assertTrue(assertThrows(ExecutionException.class, () -> oom.get(1, TimeUnit.SECONDS)).getCause() instanceof OutOfMemoryError);
        next.get(1, TimeUnit.SECONDS);
        assertTrue(after[0], "the write after the failures ran, before close returned");
        assertTrue(w.submit(() -> {}).isCompletedExceptionally(), "nothing is taken once closed");
    }
}
