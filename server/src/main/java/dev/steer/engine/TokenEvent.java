package dev.steer.engine;

import dev.steer.llama.TopLogprobs;

/**
 * One generated token as the engine reports it.
 *
 * @param token    the token id, or {@link #NO_TOKEN}
 * @param text     text that became final with this token; may be empty (a character still incomplete, or text held
 *                 back because it may begin a stop string) and may hold text of earlier tokens
 * @param logprob  log-probability of the token under the raw logits, NaN when not requested
 * @param top      the most likely alternatives, null when not requested
 */
public record TokenEvent(int token, byte[] bytes, String text, float logprob, TopLogprobs top) {
    /** {@link #token} of the last event of a generation that only releases text held back until the end. */
    public static final int NO_TOKEN = -1;
}
