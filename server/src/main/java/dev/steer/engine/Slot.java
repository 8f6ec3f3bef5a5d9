package dev.steer.engine;

import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.LoraAdapter;
import dev.steer.llama.TopLogprobs;
import dev.steer.llama.Utf8Stream;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;

/**
 * One parallel sequence of the context and the generation it is running. Lives on the decode thread only.
 * Between generations it keeps its tokens in the KV cache, so a later prompt with the same prefix reuses them.
 *
 * <p>Positions: the cache holds {@code cached[0 .. cachedLength)} at positions 0, 1, ...; the generation's prompt
 * ends at {@code outputStart}; its output (generated tokens and corrections, in order) is {@code out}, the
 * generation's own {@link GenerationOutput} (which its session reads too), where token {@code i} sits at position
 * {@code outputStart + i}.
 *
 * <p>Its transitions are its own methods, called by {@link Engine}: {@link #start} (a generation is admitted),
 * {@link #steer} (the cut, by {@link SteerSurgery}), {@link #forkDecoded} (the steer is complete), {@link #sampled},
 * {@link #release} (the generation ends; the cache stays for prefix reuse) and {@link #dropCache}.
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
    GenerationOutput out;      // the running generation's output; this slot writes it, only while it runs it
    int generated;             // tokens sampled in this generation (usage)
    int budget;                // tokens that may still be sampled
    int nextToken = -1;        // sampled, not yet decoded
    int batchIndex = -1;       // where this slot's sampling logits are in the current batch, -1 if none
    int inBatch;               // tokens this slot put in the current batch
    int reusedPrompt;

    Slot(int seq) {
        this.seq = seq;
    }

    /**
     * A generation is admitted: the cache was cut to {@code keep} tokens (its shared prefix), {@code sampler} has
     * seen the output being continued, if any; its prompt is the input from {@code keep} on.
     */
    void start(Engine.Job job, int keep, LlamaSampler sampler) {
        GenerationRequest r = job.request;
        int[] prompt = r.prompt();
        this.cachedLength = keep;
        this.job = job;
        this.adapter = r.adapter();
        this.cacheAdapter = r.adapter();
        this.sampler = sampler;
        this.input = prompt;
        this.inputDone = keep;
        // A steer on a finished answer: its fork row is in the prompt, and is reported once decoded.
        this.forkInput = r.steer() == null ? -1 : r.outputStart() + r.steer().at() - 1;
        this.forkBatchIndex = -1;
        this.pendingSteer = r.steer();
        this.steerDone = null;
        this.outputStart = r.outputStart();
        this.out = job.output;  // already holds the answer being continued, if any
        this.reusedPrompt = keep;
        this.generated = 0;
        this.budget = r.maxTokens();
        this.nextToken = -1;
        this.batchIndex = -1;
        this.utf8 = new Utf8Stream();
        this.stops = new StopMatcher(r.stop());
    }

    /**
     * A checked steer ({@link SteerSurgery#check} gave {@code next}): the surgery, then the generation continues
     * with the new sampler, fresh text state and its new budget. Cannot fail.
     */
    void steer(LlamaContext context, int at, int[] correction, LlamaSampler next, int maxTokens,
               CompletableFuture<SteerEvent> done) {
        pendingSteer = SteerSurgery.cut(context, this, at, correction);
        sampler.close();
        sampler = next;
        steerDone = done;
        nextToken = -1;
        utf8 = new Utf8Stream();
        stops = new StopMatcher(job.request.stop());
        budget = maxTokens > 0 ? maxTokens : job.request.maxTokens();
    }

    /**
     * The fork's row is decoded: the steer in flight is complete. Returns it with the fork's log-probs; its
     * future ({@link #steerDone}) is left to complete once the listener has heard of it.
     */
    SteerEvent forkDecoded(TopLogprobs forkTop) {
        SteerEvent p = pendingSteer;
        forkInput = -1;
        forkBatchIndex = -1;
        pendingSteer = null;
        return new SteerEvent(p.at(), p.accepted(), p.rejected(), p.correction(), forkTop);
    }

    /** The steer in flight is complete, or failed with {@code error} (null: completes it with {@code e}). */
    void steerFinished(SteerEvent e, RuntimeException error) {
        if (steerDone != null) {
            if (error == null) {
                steerDone.complete(e);
            } else {
                steerDone.completeExceptionally(error);
            }
            steerDone = null;
        }
    }

    /**
     * A token was sampled: it counts against the budget, and is output now unless it ends the generation (an
     * end-of-generation token ends the answer, it is not part of it; with {@code ignore_eos} it is just a token).
     */
    void sampled(int token, boolean ends) {
        generated++;
        budget--;
        if (!ends) {
            out.append(token);
        }
    }

    /** The steer reported to the listener: the output's readers see it from now on. */
    void steerShown() {
        out.showSteer();
    }

    /** The generation ends (finished or failed): its steer in flight fails, its sampler is freed; the cache stays. */
    void release() {
        steerFinished(null, new IllegalStateException("the generation ended before the steer was applied"));
        if (sampler != null) {
            sampler.close();
            sampler = null;
        }
        // A cut-short prefill leaves a partial prompt in the cache: still a valid prefix for later requests.
        job = null;
        out = null;  // the output is the finished generation's (and its session's) now: never written again
        adapter = null;
        nextToken = -1;
        batchIndex = -1;
    }

    /** The sequence's cache was cleared: nothing of it is a prefix any more. */
    void dropCache() {
        cachedLength = 0;
        cacheAdapter = null;
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
