package dev.steer.steer;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The one thread ({@code steer-store}) that runs the store writes the decode thread asks for, oldest first. The
 * decode thread only hands a write over (a queue add, never a wait): the store's lock can be held for long by an
 * HTTP request (an export, a list of thousands of records), by the training thread, or by SQLite's fsync and file
 * lock, and every stream would stall behind it (docs/architecture.md, sharp edge 1). Whoever must know that a write
 * is durable (a steer's acknowledgement, the events after it) waits on the future {@link #submit} returns.
 *
 * <p>The queue needs no bound of its own: writes come from steers and the ends of steered generations, and a session
 * has at most one steer in flight (it is acknowledged only once committed), so what waits here is bounded by the
 * generations running and queued. An unsteered streamed answer's end (an accepted answer) is waited on by nobody:
 * it is not handed over once {@link SteerStore#ACCEPTED_BACKLOG} writes wait.
 */
public final class SteerWriter implements AutoCloseable {
    private record Write(Runnable write, CompletableFuture<Void> done) {}

    private final LinkedBlockingQueue<Write> queue = new LinkedBlockingQueue<>();
    private final Thread thread;
    private volatile boolean closing;

    public SteerWriter() {
        thread = Thread.ofPlatform().name("steer-store").daemon().start(this::loop);
    }

    /**
     * Queues a write; it runs after every write queued before it. The future completes once it has returned (for a
     * {@link SteerStore} write: once it is on disk), or exceptionally with what it threw.
     */
    public synchronized CompletableFuture<Void> submit(Runnable write) {
        // Synchronized with close only (held for a queue add): nothing is added once the drain has begun.
        CompletableFuture<Void> done = new CompletableFuture<>();
        if (closing) {
            done.completeExceptionally(new IllegalStateException("the steer store is closing"));
        } else {
            queue.add(new Write(write, done));
        }
        return done;
    }

    /** Writes handed over and not yet done. */
    public int pending() {
        return queue.size();
    }

    private void loop() {
        while (!closing || !queue.isEmpty()) {
            Write w;
            try {
                w = queue.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                continue;  // only close interrupts; the loop condition decides
            }
            if (w != null) {
                run(w);
            }
        }
    }

    private static void run(Write w) {
        try {
            w.write.run();
            w.done.complete(null);
        } catch (Throwable t) {
            // Even an Error (out of memory) fails this write only: the next steer's write may well succeed.
            w.done.completeExceptionally(t);
        }
    }

    /**
     * Runs what was handed over (at most 30 s more), then stops. Call it before the store closes: a write handed
     * over has been promised to someone.
     */
    @Override
    public void close() {
        synchronized (this) {
            closing = true;
        }
        try {
            thread.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Write w; (w = queue.poll()) != null; ) {
            w.done.completeExceptionally(new IllegalStateException("the steer store closed before this write ran"));
        }
    }
}
