package dev.steer.engine;

/**
 * A steer the engine refused: nothing changed. {@link #reason()} says why, so callers act on the reason (a 409, a
 * 400 naming the field, or continuing a finished answer) and never on the message's wording.
 */
public final class SteerRefusedException extends IllegalStateException {
    /** Why a steer was refused. */
    public enum Reason {
        /** queued, or still prefilling its prompt: there is nothing to cut yet (never "finished": that would start a second generation) */
        NOT_STARTED,
        /** the generation has ended: a steer continues the finished answer instead */
        FINISHED,
        /** another steer on it is still being applied */
        IN_FLIGHT,
        /** {@code at} is outside the output */
        BAD_AT,
        /** the correction is empty */
        EMPTY,
        /** the request's grammar does not allow the correction at the fork */
        GRAMMAR,
        /** kept output plus correction do not fit in the context of one request */
        DOES_NOT_FIT
    }

    private final Reason reason;

    public SteerRefusedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }

    static SteerRefusedException notStarted() {
        return new SteerRefusedException(Reason.NOT_STARTED, "the completion has not started yet; steer it once it streams");
    }
}
