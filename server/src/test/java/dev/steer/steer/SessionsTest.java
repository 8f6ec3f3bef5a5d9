package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.engine.Generation;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.SteerEvent;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class SessionsTest {
    @Test
    void aFinishedSessionExpiresAfterItsTtlAndARunningOneNever() {
        long[] now = {1_000};  // a clock the test moves: no sleeping for the TTL
        Sessions sessions = new Sessions(50, () -> now[0]);
        Session done = sessions.open("a", "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
        Session running = sessions.open("b", "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
        done.finished(sessions.now());
        now[0] += 50;
        assertTrue(sessions.get("a").isPresent(), "still within its TTL, to the millisecond");
        now[0] += 1;
        assertTrue(sessions.get("a").isEmpty(), "expired");
        now[0] += 1_000_000;
        assertTrue(sessions.get("b").isPresent(), "never finished, so never expires");
        assertTrue(running.live() == null);
    }

    private static final Generation RUNNING = new Generation() {
        @Override
        public void cancel() {}

        @Override
        public CompletableFuture<SteerEvent> steer(int at, int[] correction, int maxTokens) {
            return new CompletableFuture<>();
        }
    };

    private static Session session() {
        return new Sessions(1000).open("s", "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
    }

    @Test
    void aGenerationThatFinishesBeforeItsSubmitReturnsStaysFinished() {
        Session s = session();
        s.starting();
        s.finished(5_000);     // the recorder saw the end first
        s.started(RUNNING);    // then the submit returned
        assertNull(s.live(), "not live again");
        assertTrue(s.expired(5_000 + 1001, 1000), "so it expires");
    }

    @Test
    void aStartedGenerationIsLiveUntilItFinishes() {
        Session s = session();
        s.starting();
        assertFalse(s.expired(Long.MAX_VALUE, 1000), "starting: not expired, even long after");
        s.started(RUNNING);
        assertSame(RUNNING, s.live());
        assertFalse(s.expired(Long.MAX_VALUE, 1000));
        s.finished(7_000);
        assertNull(s.live());
        assertFalse(s.expired(7_500, 1000));
        assertTrue(s.expired(8_001, 1000));
    }

    @Test
    void aSubmitThatFailsLeavesASessionThatExpires() {
        Session s = session();
        s.starting();
        s.notStarted(3_000);   // e.g. 429: the queue was full
        assertNull(s.live());
        assertTrue(s.expired(4_001, 1000));
    }

    private static Session open(Sessions sessions, String id) {
        Session s = sessions.open(id, "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
        s.starting();
        return s;
    }

    @Test
    void whenFullTheOldestFinishedSessionGoesFirstAndIfNoneHasFinishedNothingIsOpened() {
        long[] now = {1_000};
        Sessions sessions = new Sessions(60_000, 3, () -> now[0]);
        Session a = open(sessions, "a");
        Session b = open(sessions, "b");
        Session c = open(sessions, "c");
        c.finished(now[0]++);   // c finished first, then a
        a.finished(now[0]++);
        open(sessions, "d");
        assertTrue(sessions.get("c").isEmpty(), "the oldest finished is pushed out, not the oldest opened");
        assertTrue(sessions.get("a").isPresent() && sessions.get("b").isPresent());
        open(sessions, "e");
        assertTrue(sessions.get("a").isEmpty());
        assertEquals(3, sessions.size());
        Sessions.FullException full = assertThrows(Sessions.FullException.class, () -> open(sessions, "f"));
        assertTrue(full.getMessage().contains("--max-sessions"), full.getMessage());
        assertTrue(sessions.get("f").isEmpty(), "nothing opened for it");
        assertEquals(3, sessions.size());
        b.finished(now[0]);
        open(sessions, "f");
        assertTrue(sessions.get("b").isEmpty() && sessions.get("f").isPresent());
    }

    @Test
    void aSessionRunningAgainIsNeitherExpiredNorPushedOutAndFinishingAgainMakesItTheNewest() {
        long[] now = {1_000};
        Sessions sessions = new Sessions(100, 2, () -> now[0]);
        Session a = open(sessions, "a");
        Session b = open(sessions, "b");
        a.finished(now[0]);
        b.finished(now[0] + 10);
        a.starting();           // a steer's continuation
        now[0] += 1_000;
        assertTrue(sessions.get("a").isPresent(), "running again: not expired");
        assertTrue(sessions.get("b").isEmpty(), "expired");
        open(sessions, "c");
        assertThrows(Sessions.FullException.class, () -> open(sessions, "d"), "a and c run: a is not pushed out");
        a.finished(now[0]);     // now a finished after... nothing else has: c still runs
        open(sessions, "d");
        assertTrue(sessions.get("a").isEmpty() && sessions.get("c").isPresent());
    }

    @Test
    void expiryStopsAtTheFirstSessionStillWithinItsTtl() {
        long[] now = {0};
        Sessions sessions = new Sessions(100, 100_000, () -> now[0]);
        for (int i = 0; i < 50_000; i++) {
            open(sessions, "s" + i).finished(i);   // finished one millisecond apart (the clock stays at 0 meanwhile)
        }
        assertEquals(50_000, sessions.size());
        now[0] = 50_010;        // those finished at 49,910 ms or later are within the TTL
        assertEquals(90, sessions.size());
        assertTrue(sessions.get("s49910").isPresent() && sessions.get("s49909").isEmpty());
        // How long a lookup takes is a benchmark's matter, not a unit test's (the project's rule: no timed unit tests).
    }

    @Test
    void aDiscardedSessionIsGoneAtOnceAndItsFinishingLaterChangesNothing() {
        Sessions sessions = new Sessions(1000, 2, () -> 0);
        Session a = open(sessions, "a");
        sessions.discard(a);
        assertEquals(0, sessions.size());
        a.finished(0);
        assertEquals(0, sessions.size());
        open(sessions, "b");
        open(sessions, "c");
        assertThrows(Sessions.FullException.class, () -> open(sessions, "d"), "the discarded one does not count as finished");
    }

    @Test
    void atLeastOneSession() {
        assertThrows(IllegalArgumentException.class, () -> new Sessions(1000, 0, () -> 0));
    }
}
