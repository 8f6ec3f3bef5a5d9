package dev.steer.steer;

/**
 * A streamed answer the person let run to its end without a steer or stop: approved text, which a job keeps the
 * adapter at the base model on (docs/training.md, "the replay set").
 *
 * @param outputTokens what the model generated, its end-of-generation token last when it ended the answer itself
 */
public record Accepted(String sessionId, String model, String adapterVersion, int[] promptTokens, int[] outputTokens,
                       long createdAt) {}
