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

    /**
     * The same request answered by adapter {@code a} (null: the base model). An adapter's answer in free text gets
     * {@link #ADAPTER_DRY} unless the request chose a DRY penalty itself ({@code dry_multiplier: 0} turns it off); one
     * a grammar holds (a JSON schema, tool calls) gets none: there repeats are the structure (keys, brackets).
     */
    public GenerationRequest withAdapter(LoraAdapter a) {
        boolean freeText = sampling.grammar() == null;
        LlamaSampler.Params s = a != null && freeText && sampling.dry() == null ? sampling.withDry(ADAPTER_DRY) : sampling;
        return new GenerationRequest(prompt, s, maxTokens, stop, topLogprobs, ignoreEos, outputStart, steer, a);
    }

    /**
     * The DRY penalty an adapter's answers get by default: the multiplier DRY's author suggests (0.8), llama-server's
     * base, allowed length and window (1.75, runs over 2 tokens, the last 64 tokens), and runs broken at a line break
     * only. Why: an adapter trained on a few dozen steers raises its corrections' phrases wherever its habit applies,
     * and greedy decoding then says a taught sentence again and again ("I am Steer, a small assistant that learns from
     * your corrections. I am a small assistant that ..."); no loss term tried kept it from that (docs/training.md,
     * "Measured"). A run said again is charged more with each token, while short repeats ("Step 3:", a word) cost
     * nothing. Not llama-server's other breakers ({@code : " *}, kept for chat transcripts' "Name:" and quoted
     * speech): a habit is often a label that ends in ':' ("In plain words:", "Step 2:"), and with ':' breaking every
     * run, a label said over and over ("In plain words: In plain words: ...") and list items that repeat after their
     * "Step N:" were never charged (measured: docs/training.md, the twenty-sixth session). The base model's answers are
     * left exactly as llama-server gives them (no DRY by default).
     */
    public static final LlamaSampler.Dry ADAPTER_DRY = new LlamaSampler.Dry(0.8f, 1.75f, 2, 64, List.of("\n"));

    public static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, LlamaSampler.Params.greedy(), maxTokens, List.of(), -1, false);
    }
}
