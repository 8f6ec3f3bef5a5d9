package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.steer.SteerRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Hands a generation's events from the engine's decode thread to the HTTP thread that writes them, so the decode
 * loop never waits on a client's socket. The {@code n} choices of one request each have their own listener
 * ({@link #choices}) over one queue: their events arrive in the order they happened, each naming its choice.
 */
final class EventStream implements GenerationListener {
    sealed interface Event permits Token, Steered, Finished, Failed {}

    /** {@code choice}: the index of the choice it belongs to (0 for a request with one). */
    record Token(int choice, TokenEvent event) implements Event {}

    /** A steer, stored: the output is now its accepted text plus its correction. */
    record Steered(int choice, SteerRecord record) implements Event {}

    record Finished(int choice, FinishReason reason, Usage usage) implements Event {}

    record Failed(int choice, RuntimeException error) implements Event {}

    private final LinkedBlockingQueue<Event> queue;
    private final int choice;

    EventStream() {
        this(new LinkedBlockingQueue<>(), 0);
    }

    private EventStream(LinkedBlockingQueue<Event> queue, int choice) {
        this.queue = queue;
        this.choice = choice;
    }

    /** One listener per choice, all on one queue: {@link #next} on any of them returns the next event of any choice. */
    static List<EventStream> choices(int n) {
        LinkedBlockingQueue<Event> shared = new LinkedBlockingQueue<>();
        List<EventStream> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new EventStream(shared, i));
        }
        return out;
    }

    @Override
    public void onToken(TokenEvent event) {
        queue.add(new Token(choice, event));
    }

    void steered(SteerRecord record) {
        queue.add(new Steered(choice, record));
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {
        queue.add(new Finished(choice, reason, usage));
    }

    @Override
    public void onError(RuntimeException error) {
        queue.add(new Failed(choice, error));
    }

    Event next() throws InterruptedException {
        return queue.take();
    }
}
