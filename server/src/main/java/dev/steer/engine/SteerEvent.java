package dev.steer.engine;

import dev.steer.llama.TopLogprobs;

/**
 * A steer, as applied to a generation: the output was cut after {@code at} tokens, {@code rejected} was dropped,
 * {@code correction} was put in its place, and generation continues after it.
 *
 * @param accepted the output tokens kept (the first {@code at})
 * @param forkTop  the model's most likely tokens at the fork, i.e. where {@code rejected[0]} had been sampled
 */
public record SteerEvent(int at, int[] accepted, int[] rejected, int[] correction, TopLogprobs forkTop) {
    /** The output as it was before the steer cut it: accepted + rejected (what readers see until the steer is shown). */
    public int[] before() {
        int[] b = java.util.Arrays.copyOf(accepted, accepted.length + rejected.length);
        System.arraycopy(rejected, 0, b, accepted.length, rejected.length);
        return b;
    }
}
