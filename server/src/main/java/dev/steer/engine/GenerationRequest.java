package dev.steer.engine;

import dev.steer.llama.LlamaSampler;
import dev.steer.llama.LoraAdapter;
import java.util.List;

/**
 * One generation for the engine: a tokenized prompt and how to continue it.
 *
 * @param maxTokens   most tokens to generate (the per-sequence context may stop it earlier)
 * @param stop        strings that end the output (not included in it), matched across token boundaries
 * @param topLogprobs -1: no log-probs; 0..20: the sampled token's log-prob plus this many alternatives
 * @param ignoreEos   keep going past end-of-generation tokens (benchmarks)
 * @param outputStart where the output begins in {@code prompt}: tokens from here on are already part of the answer
 *                    (an earlier answer being continued after a steer). Steer positions count from here.
 * @param steer       when this generation continues a finished one after a steer: what the steer was (its fork
 *                    log-probs are computed and reported); null otherwise
 * @param adapter     the LoRA adapter to generate with, null for the base model. The engine frees an adapter only
 *                    once no generation uses it ({@link Engine#retire}).
 */
public record GenerationRequest(int[] prompt, LlamaSampler.Params sampling, int maxTokens, List<String> stop,
                                int topLogprobs, boolean ignoreEos, int outputStart, SteerEvent steer, LoraAdapter adapter) {
    public GenerationRequest {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1");
        }
        if (outputStart < 1 || outputStart > prompt.length) {
            throw new IllegalArgumentException("outputStart must be in [1, prompt length]");
        }
        stop = List.copyOf(stop);
    }

    public GenerationRequest(int[] prompt, LlamaSampler.Params sampling, int maxTokens, List<String> stop,
                             int topLogprobs, boolean ignoreEos) {
        this(prompt, sampling, maxTokens, stop, topLogprobs, ignoreEos, prompt.length, null, null);
    }

    public GenerationRequest withSampling(LlamaSampler.Params s) {
        return new GenerationRequest(prompt, s, maxTokens, stop, topLogprobs, ignoreEos, outputStart, steer, adapter);
    }

    public GenerationRequest withAdapter(LoraAdapter a) {
        return new GenerationRequest(prompt, sampling, maxTokens, stop, topLogprobs, ignoreEos, outputStart, steer, a);
    }

    public static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, LlamaSampler.Params.greedy(), maxTokens, List.of(), -1, false);
    }
}
