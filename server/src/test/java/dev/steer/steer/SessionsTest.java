package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.engine.GenerationRequest;
import org.junit.jupiter.api.Test;

class SessionsTest {
    @Test
    void aFinishedSessionExpiresAfterItsTtlAndARunningOneNever() throws InterruptedException {
        Sessions sessions = new Sessions(50);
        Session done = sessions.open("a", "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
        Session running = sessions.open("b", "m", "m@base", null, "{}", GenerationRequest.greedy(new int[] {1, 2}, 4));
        done.finished(System.currentTimeMillis());
        assertTrue(sessions.get("a").isPresent(), "still within its TTL");
        Thread.sleep(120);
        assertTrue(sessions.get("a").isEmpty(), "expired");
        assertTrue(sessions.get("b").isPresent(), "never finished, so never expires");
        assertTrue(running.live() == null);
    }
}
