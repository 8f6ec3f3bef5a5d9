package dev.steer.engine;

/**
 * Token counts of one generation.
 *
 * @param promptTokens     tokens of the prompt
 * @param cachedTokens     of those, how many were reused from the KV cache instead of being computed
 * @param completionTokens tokens generated
 */
public record Usage(int promptTokens, int cachedTokens, int completionTokens) {}
