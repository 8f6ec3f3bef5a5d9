package dev.steer.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.engine.Engine;
import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A listener that holds the decode thread inside its step from its first token until {@link #release} (at most
 * 30 s), as a stalled SQLite write would: for tests of what the server does while its decode loop is stuck.
 */
public final class BlockingListener implements GenerationListener {
    public final CountDownLatch entered = new CountDownLatch(1);
    public final CountDownLatch release = new CountDownLatch(1);

    /** Submits a short generation with this listener and returns once the decode thread is held. */
    public void block(Engine engine) throws InterruptedException {
        engine.submit(GenerationRequest.greedy(engine.model().tokenize("block", true, false), 2), this);
        assertTrue(entered.await(20, TimeUnit.SECONDS), "the blocking listener was never called");
    }

    @Override
    public void onToken(TokenEvent event) {
        entered.countDown();
        try {
            release.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {}

    @Override
    public void onError(RuntimeException error) {}
}
