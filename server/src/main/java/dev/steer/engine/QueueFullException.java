package dev.steer.engine;

/** The engine's wait queue is full: the caller should try again later (HTTP 429). */
public final class QueueFullException extends RuntimeException {
    public QueueFullException(int capacity) {
        super("the server is busy: " + capacity + " requests are already waiting");
    }
}
