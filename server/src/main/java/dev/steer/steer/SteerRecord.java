package dev.steer.steer;

import java.util.List;
import java.util.Set;

/**
 * One steer as stored: the exact context, what the model generated, where a person cut it, and what they wrote.
 * The context the model saw after the steer is {@code promptTokens + acceptedTokens + correctionTokens}.
 *
 * @param kind               "steer", or "rejection" for a stop without a correction
 * @param forkTopLogprobs    the model's most likely tokens at the fork (where rejectedTokens[0] was sampled)
 * @param continuationTokens generated after the steer until the end or the next steer; null while it runs
 */
public record SteerRecord(
        String id,
        String sessionId,
        String kind,
        String model,
        String adapterVersion,
        String requestJson,
        int[] promptTokens,
        int at,
        int[] acceptedTokens,
        int[] rejectedTokens,
        int[] correctionTokens,
        String correctionText,
        String acceptedText,
        String rejectedText,
        List<TokenLogprob> forkTopLogprobs,
        int[] continuationTokens,
        String continuationText,
        boolean excluded,
        Set<String> tags,
        long createdAt,
        long updatedAt) {

    public record TokenLogprob(int token, float logprob) {}
}
