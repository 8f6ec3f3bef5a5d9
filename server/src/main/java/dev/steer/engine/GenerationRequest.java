package dev.steer.engine;

import dev.steer.llama.LlamaSampler;
import java.util.List;

/**
 * One generation for the engine: a tokenized prompt and how to continue it.
 *
 * @param maxTokens   most tokens to generate (the per-sequence context may stop it earlier)
 * @param stop        strings that end the output (not included in it), matched across token boundaries
 * @param topLogprobs -1: no log-probs; 0..20: the sampled token's log-prob plus this many alternatives
 * @param ignoreEos   keep going past end-of-generation tokens (benchmarks)
 */
public record GenerationRequest(int[] prompt, LlamaSampler.Params sampling, int maxTokens, List<String> stop,
                                int topLogprobs, boolean ignoreEos) {
    public GenerationRequest {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1");
        }
        stop = List.copyOf(stop);
    }

    public static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, LlamaSampler.Params.greedy(), maxTokens, List.of(), -1, false);
    }
}
