package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
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
}
