package dev.steer.engine;

import dev.steer.llama.LlamaSampler;
import dev.steer.llama.LoraAdapter;
import dev.steer.llama.Utf8Stream;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;

/**
 * One parallel sequence of the context and the generation it is running. Lives on the decode thread only.
 * Between generations it keeps its tokens in the KV cache, so a later prompt with the same prefix reuses them.
 *
 * <p>Positions: the cache holds {@code cached[0 .. cachedLength)} at positions 0, 1, ...; the generation's prompt
 * ends at {@code outputStart}; its output (generated tokens and corrections, in order) is {@code out}, where
 * {@code out[i]} sits at position {@code outputStart + i}.
 */
final class Slot {
    final int seq;
    int[] cached = new int[64];
    int cachedLength;

    Engine.Job job;            // null: idle
    LoraAdapter adapter;       // the running generation's adapter, null: the base model
    LoraAdapter cacheAdapter;  // the adapter the cached tokens were computed under
    LlamaSampler sampler;
    Utf8Stream utf8;
    StopMatcher stops;

    int[] input;               // tokens still to decode before sampling: the prompt, or fork token + correction
    int inputDone;
    int forkInput = -1;        // index in input whose logits are a steer's fork, -1 if none
    int forkBatchIndex = -1;   // where those logits are in the current batch
    SteerEvent pendingSteer;   // reported once the fork's logits are known
    CompletableFuture<SteerEvent> steerDone;

    int outputStart;
    int[] out = new int[64];
    int outLength;
    int generated;             // tokens sampled in this generation (usage)
    int budget;                // tokens that may still be sampled
    int nextToken = -1;        // sampled, not yet decoded
    int batchIndex = -1;       // where this slot's sampling logits are in the current batch, -1 if none
    int inBatch;               // tokens this slot put in the current batch
    int reusedPrompt;

    Slot(int seq) {
        this.seq = seq;
    }

    boolean idle() {
        return job == null;
    }

    boolean prefilling() {
        return job != null && inputDone < input.length;
    }

    void appendCached(int token) {
        if (cachedLength == cached.length) {
            cached = Arrays.copyOf(cached, cached.length * 2);
        }
        cached[cachedLength++] = token;
    }

    void appendOut(int token) {
        if (outLength == out.length) {
            out = Arrays.copyOf(out, out.length * 2);
        }
        out[outLength++] = token;
    }

    /** How many leading tokens of {@code prompt} this slot already holds. */
    int commonPrefix(int[] prompt) {
        int n = Math.min(cachedLength, prompt.length);
        int i = 0;
        while (i < n && cached[i] == prompt[i]) {
            i++;
        }
        return i;
    }
}
