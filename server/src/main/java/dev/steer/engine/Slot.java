package dev.steer.engine;

import dev.steer.llama.LlamaSampler;
import dev.steer.llama.Utf8Stream;
import java.util.Arrays;

/**
 * One parallel sequence of the context and the generation it is running. Lives on the decode thread only.
 * Between generations it keeps its tokens in the KV cache, so a later prompt with the same prefix reuses them.
 */
final class Slot {
    final int seq;
    /** tokens in this sequence's KV cache, in position order */
    int[] cached = new int[64];
    int cachedLength;

    Engine.Job job;            // null: idle
    LlamaSampler sampler;
    Utf8Stream utf8;
    StopMatcher stops;
    int promptDone;            // prompt tokens already in the cache
    int generated;
    int nextToken = -1;        // sampled, not yet decoded
    int batchIndex = -1;       // where this slot's logits are in the current batch, -1 if none
    int inBatch;               // tokens this slot put in the current batch
    int reusedPrompt;

    Slot(int seq) {
        this.seq = seq;
    }

    boolean idle() {
        return job == null;
    }

    boolean prefilling() {
        return job != null && promptDone < job.request.prompt().length;
    }

    void appendCached(int token) {
        if (cachedLength == cached.length) {
            cached = Arrays.copyOf(cached, cached.length * 2);
        }
        cached[cachedLength++] = token;
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
