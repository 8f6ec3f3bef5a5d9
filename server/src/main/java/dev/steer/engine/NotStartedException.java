package dev.steer.engine;

/**
 * A steer on a generation that has not produced its first token (queued, or prefilling its prompt): there is nothing
 * to cut yet. Its own type, so that callers never take it for a finished generation and continue that in a second one.
 */
public final class NotStartedException extends IllegalStateException {
    NotStartedException() {
        super("the completion has not started yet; steer it once it streams");
    }
}
