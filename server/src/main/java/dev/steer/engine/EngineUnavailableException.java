package dev.steer.engine;

/**
 * The decode loop cannot serve this now: its thread has died, or it did not take up a hand-off (an adapter load)
 * within the caller's bound (HTTP 503). Nothing was changed.
 */
public final class EngineUnavailableException extends RuntimeException {
    public EngineUnavailableException(String message) {
        super(message);
    }

    public EngineUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
