package dev.steer.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaSampler;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The one copy of a generation's output: the decode thread writes it (appends, a steer's cut), any thread reads it
 * without a lock and gets an output that existed; a steer shows only once it is reported.
 */
@Timeout(60)
class GenerationOutputTest {
    private static GenerationRequest request(int[] prompt, int outputStart, SteerEvent steer) {
        return new GenerationRequest(prompt, LlamaSampler.Params.greedy(), 8, List.of(), -1, false, outputStart, steer, null);
    }

    @Test
    void aFreshGenerationStartsEmptyAndShowsEachTokenOnceAppended() {
        GenerationOutput out = GenerationOutput.startOf(request(new int[] {1, 2, 3}, 3, null));
        assertArrayEquals(new int[0], out.tokens());
        for (int t = 10; t < 100; t++) {  // past the first array: the copy goes on where it stopped
            out.append(t);
        }
        assertEquals(90, out.length());
        assertEquals(10, out.tokens()[0]);
        assertEquals(99, out.tokens()[89]);
    }

    @Test
    void aSteersCutIsSeenOnlyOnceReported() {
        GenerationOutput out = GenerationOutput.of();
        for (int t : new int[] {5, 6, 7, 8}) {
            out.append(t);
        }
        out.cut(2, new int[] {40, 41});
        assertArrayEquals(new int[] {5, 6, 7, 8}, out.tokens(), "the fork is not decoded yet: readers see the output before it");
        assertArrayEquals(new int[] {5, 6, 40, 41}, out.written(0, out.writtenLength()), "the engine continues from the cut");
        out.showSteer();
        out.append(9);
        assertArrayEquals(new int[] {5, 6, 40, 41, 9}, out.tokens());
        assertThrows(IndexOutOfBoundsException.class, () -> out.cut(6, new int[] {1}));
    }

    @Test
    void aContinuationShowsTheAnswerAsItWasUntilItsSteerIsReported() {
        int[] prompt = {1, 2, 3, 5, 6, 40};  // prompt 1 2 3, then accepted 5 6, then correction 40
        SteerEvent steer = new SteerEvent(2, new int[] {5, 6}, new int[] {7, 8}, new int[] {40}, null);
        GenerationOutput out = GenerationOutput.startOf(request(prompt, 3, steer));
        assertArrayEquals(new int[] {5, 6, 7, 8}, out.tokens(), "before its fork is decoded: the answer it continues");
        assertArrayEquals(new int[] {5, 6, 40}, out.written(0, out.writtenLength()));
        out.showSteer();
        assertArrayEquals(new int[] {5, 6, 40}, out.tokens());
    }

    /**
     * A reader racing the writer: every copy it takes is an output that existed, i.e. a prefix of the output before
     * the cut or of the output after it, never a mix (the cut writes a new array; the length is published last).
     */
    @Test
    void readersRacingTheWriterSeeOnlyOutputsThatExisted() throws Exception {
        GenerationOutput out = GenerationOutput.of();
        AtomicBoolean writing = new AtomicBoolean(true);
        AtomicReference<String> bad = new AtomicReference<>();
        AtomicInteger reads = new AtomicInteger();
        CountDownLatch reading = new CountDownLatch(1);
        Thread reader = new Thread(() -> {
            while ((writing.get() || reads.get() == 0) && bad.get() == null) {
                int[] seen = out.tokens();
                reads.incrementAndGet();
                reading.countDown();
                for (int i = 0; i < seen.length; i++) {
                    // before the cut: token i is i; after it: i below 1000, then -1 (the correction), then 2000 + i
                    boolean before = seen[i] == i;
                    boolean after = (i < 1000 && seen[i] == i) || (i == 1000 && seen[i] == -1) || (i > 1000 && seen[i] == 2000 + i);
                    if (!before && !after) {
                        bad.set("token " + i + " of " + seen.length + " is " + seen[i]);
                        return;
                    }
                }
            }
        });
        reader.start();
        assertTrue(reading.await(30, TimeUnit.SECONDS), "the reader started");
        for (int i = 0; i < 200_000; i++) {
            out.append(i);
        }
        out.cut(1000, new int[] {-1});
        out.showSteer();
        for (int i = 1001; i < 200_000; i++) {
            out.append(2000 + i);
        }
        writing.set(false);
        reader.join(TimeUnit.SECONDS.toMillis(30));
        assertTrue(!reader.isAlive(), "the reader ended");
        assertEquals(null, bad.get());
        int[] last = out.tokens();
        assertEquals(200_000, last.length);
        assertEquals(-1, last[1000]);
        assertTrue(Arrays.stream(last, 1001, last.length).allMatch(t -> t >= 3001));
    }
}
