package dev.steer.engine;

/**
 * A steer that was taken up failed with its generation: the steer could not be stored, or the decode failed. The
 * generation's client got an error too. Its own type, so that callers tell it from a refused steer (409), which
 * changes nothing.
 */
public final class SteerFailedException extends RuntimeException {
    SteerFailedException(Throwable cause) {
        super("the steer failed with its generation: " + cause.getMessage(), cause);
    }
}
