package dev.steer.engine;

/**
 * Receives one generation's output. Called on the engine's decode thread: implementations must return quickly
 * (hand events to another thread; never block on a client socket).
 */
public interface GenerationListener {
    /**
     * The generation is about to be queued; {@code output} is its output, which the engine writes from the decode
     * thread and any thread may read ({@link GenerationOutput#tokens}). Called on the submitting thread, before any
     * other call; a submit refused after it (a full queue) starts nothing, and {@code output} then stays what the
     * request continues.
     */
    default void onSubmitted(GenerationOutput output) {}

    void onToken(TokenEvent event);

    /**
     * A steer was applied: the correction is in the cache and the next {@link #onToken} continues after it. Called
     * before any continuation token, so work done here (storing the steer) happens before the client sees more.
     */
    default void onSteer(SteerEvent event) {}

    /** The last call for a generation that ran (possibly cut short by a stop string, the length, or cancel). */
    void onFinish(FinishReason reason, Usage usage);

    /** The last call for a generation that failed inside the engine. */
    void onError(RuntimeException error);
}
