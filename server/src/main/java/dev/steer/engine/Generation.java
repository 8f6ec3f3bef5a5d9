package dev.steer.engine;

import java.util.concurrent.CompletableFuture;

/** A submitted generation. */
public interface Generation {
    /** Stops it within one decode step and frees its sequence. */
    void cancel();

    /**
     * Steers it between two decode steps: keeps the first {@code at} output tokens, drops the rest from the KV cache
     * (the context is not computed again), decodes {@code correction}, and continues for up to {@code maxTokens}
     * more tokens (0: the request's own limit). Completes once the correction is in the cache, with what was
     * rejected; fails with {@link SteerRefusedException} (its {@link SteerRefusedException.Reason}: not started,
     * finished, another steer still being applied, bad position, a correction the grammar refuses or that does not
     * fit), leaving the generation as it was, or {@link SteerFailedException} (taken up, and failed with the
     * generation).
     */
    CompletableFuture<SteerEvent> steer(int at, int[] correction, int maxTokens);
}
