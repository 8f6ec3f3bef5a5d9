package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.steer.SteerRecord;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Hands a generation's events from the engine's decode thread to the HTTP thread that writes them, so the decode
 * loop never waits on a client's socket.
 */
final class EventStream implements GenerationListener {
    sealed interface Event permits Token, Steered, Finished, Failed {}

    record Token(TokenEvent event) implements Event {}

    /** A steer, stored: the output is now its accepted text plus its correction. */
    record Steered(SteerRecord record) implements Event {}

    record Finished(FinishReason reason, Usage usage) implements Event {}

    record Failed(RuntimeException error) implements Event {}

    private final LinkedBlockingQueue<Event> queue = new LinkedBlockingQueue<>();

    @Override
    public void onToken(TokenEvent event) {
        queue.add(new Token(event));
    }

    void steered(SteerRecord record) {
        queue.add(new Steered(record));
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {
        queue.add(new Finished(reason, usage));
    }

    @Override
    public void onError(RuntimeException error) {
        queue.add(new Failed(error));
    }

    Event next() throws InterruptedException {
        return queue.take();
    }
}
