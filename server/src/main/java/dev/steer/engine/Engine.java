package dev.steer.engine;

import dev.steer.llama.Batch;
import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.TopLogprobs;
import dev.steer.llama.Utf8Stream;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The decode loop: continuous batching of many generations over the parallel sequences of one llama context.
 *
 * <p>Each step builds one batch from (1) the next token of every sequence that is generating and (2) prompt chunks of
 * sequences still prefilling, up to the batch size; decodes it; samples where logits were kept; and hands tokens to
 * the listeners. New requests join between steps, so a long prompt never stalls the streams already running.
 * A new prompt goes to the idle sequence whose cached tokens share the longest prefix with it, and only the rest is
 * computed. Every sequence may use {@code contextSize / parallel} positions.
 */
public final class Engine implements AutoCloseable {
    /**
     * @param parallel    sequences decoded together
     * @param contextSize KV cache size in tokens for all sequences together
     * @param maxQueue    requests that may wait for a free sequence before new ones are refused
     */
    public record Config(int parallel, int contextSize, int batchSize, int threads, int maxQueue) {}

    /** A generation as the engine tracks it. */
    final class Job implements Generation {
        final GenerationRequest request;
        final GenerationListener listener;
        final AtomicBoolean cancelled = new AtomicBoolean();

        Job(GenerationRequest request, GenerationListener listener) {
            this.request = request;
            this.listener = listener;
        }

        @Override
        public void cancel() {
            cancelled.set(true);
            wake();
        }
    }

    private final LlamaModel model;
    private final LlamaContext context;
    private final Config config;
    private final int perSequence;
    private final Slot[] slots;
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final EngineStats stats = new EngineStats();
    private final Thread thread;
    private volatile boolean running = true;

    public Engine(LlamaModel model, Config config) {
        this.model = model;
        this.config = config;
        this.context = LlamaContext.create(model, LlamaContext.Params.defaults()
                .withContextSize(config.contextSize())
                .withSequences(config.parallel())
                .withBatchSize(config.batchSize())
                .withThreads(config.threads())
                // One KV stream per sequence: a sequence's cells then stay in position order whatever the others
                // do, so its numbers do not depend on what it is batched with (seeded outputs are reproducible).
                .withUnifiedKvCache(false));
        this.perSequence = Math.min(context.perSequenceContext(), context.contextSize() / config.parallel());
        this.slots = new Slot[config.parallel()];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Slot(i);
        }
        this.thread = new Thread(this::loop, "steer-decode");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    public LlamaModel model() {
        return model;
    }

    public EngineStats stats() {
        return stats;
    }

    /** Positions one generation may use: prompt plus generated tokens. */
    public int contextPerSequence() {
        return perSequence;
    }

    public Config config() {
        return config;
    }

    /**
     * Queues a generation. Validates what only the engine knows (vocabulary, context size) and refuses when the
     * wait queue is full; the listener hears of everything else.
     */
    public Generation submit(GenerationRequest request, GenerationListener listener) {
        for (int t : request.prompt()) {
            if (t < 0 || t >= model.vocabSize()) {
                throw new IllegalArgumentException("token id " + t + " is out of range [0, " + model.vocabSize() + ")");
            }
        }
        if (request.prompt().length >= perSequence) {
            throw new IllegalArgumentException("the prompt has " + request.prompt().length
                    + " tokens; this server's context per request is " + perSequence + " tokens");
        }
        Job job = new Job(request, listener);
        synchronized (waiting) {
            if (waiting.size() >= config.maxQueue()) {
                stats.rejected.incrementAndGet();
                throw new QueueFullException(config.maxQueue());
            }
            waiting.add(job);
            stats.queued.set(waiting.size());
            stats.requests.incrementAndGet();
            waiting.notifyAll();
        }
        return job;
    }

    private void wake() {
        synchronized (waiting) {
            waiting.notifyAll();
        }
    }

    // ---------------------------------------------------------------- the loop (decode thread only from here on)

    private void loop() {
        Batch batch = context.newBatch();
        while (running) {
            admitWaiting();
            dropCancelled();
            batch.clear();
            boolean prompt = fill(batch);
            if (batch.isEmpty()) {
                sleepUntilWork();
                continue;
            }
            long t0 = System.nanoTime();
            try {
                context.decode(batch);
            } catch (RuntimeException e) {
                failBatch(e);
                continue;
            }
            long dt = System.nanoTime() - t0;
            stats.decodeCalls.incrementAndGet();
            stats.decodeNanos.addAndGet(dt);
            if (!prompt) {
                stats.generationDecodeNanos.addAndGet(dt);
                stats.generationDecodeTokens.addAndGet(batch.size());
            }
            commit(batch);
            for (Slot s : slots) {
                if (s.job != null && s.batchIndex >= 0) {
                    sampleNext(s);
                }
            }
        }
    }

    private void sleepUntilWork() {
        synchronized (waiting) {
            if (waiting.isEmpty() && running) {
                try {
                    waiting.wait(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    running = false;
                }
            }
        }
    }

    /** Moves waiting jobs onto idle sequences, preferring the sequence that already holds most of the prompt. */
    private void admitWaiting() {
        while (true) {
            Job job;
            synchronized (waiting) {
                job = waiting.peek();
                if (job == null) {
                    return;
                }
                Slot best = null;
                int bestPrefix = -1;
                for (Slot s : slots) {
                    if (s.idle()) {
                        int p = s.commonPrefix(job.request.prompt());
                        if (p > bestPrefix) {
                            best = s;
                            bestPrefix = p;
                        }
                    }
                }
                if (best == null) {
                    return;
                }
                waiting.poll();
                stats.queued.set(waiting.size());
                start(best, job, bestPrefix);
            }
        }
    }

    private void start(Slot s, Job job, int prefix) {
        int[] prompt = job.request.prompt();
        // Keep the shared prefix; at least the last prompt token is decoded again, for its logits.
        int keep = Math.min(prefix, prompt.length - 1);
        if (!context.removeTokens(s.seq, keep, -1)) {
            context.removeTokens(s.seq, -1, -1);  // this cache cannot cut a range: start over
            keep = 0;
        }
        s.cachedLength = keep;
        s.job = job;
        s.promptDone = keep;
        s.reusedPrompt = keep;
        s.generated = 0;
        s.nextToken = -1;
        s.batchIndex = -1;
        s.utf8 = new Utf8Stream();
        s.stops = new StopMatcher(job.request.stop());
        try {
            s.sampler = LlamaSampler.create(model, job.request.sampling());
        } catch (RuntimeException e) {
            s.job = null;
            job.listener.onError(e);
            return;
        }
        stats.active.incrementAndGet();
        stats.promptTokensCached.addAndGet(keep);
    }

    private void dropCancelled() {
        for (Slot s : slots) {
            if (s.job != null && s.job.cancelled.get()) {
                finish(s, FinishReason.CANCELLED);
            }
        }
        synchronized (waiting) {
            waiting.removeIf(j -> {
                if (j.cancelled.get()) {
                    j.listener.onFinish(FinishReason.CANCELLED, new Usage(j.request.prompt().length, 0, 0));
                    return true;
                }
                return false;
            });
            stats.queued.set(waiting.size());
        }
    }

    /** Fills the batch: generating sequences first (one token each), then prompt chunks. True if it holds prompt. */
    private boolean fill(Batch batch) {
        for (Slot s : slots) {
            s.batchIndex = -1;
            s.inBatch = 0;
            if (s.job != null && !s.prefilling() && s.nextToken >= 0) {
                s.batchIndex = batch.add(s.nextToken, s.cachedLength, s.seq, true);
                s.inBatch = 1;
            }
        }
        boolean prompt = false;
        for (Slot s : slots) {
            if (s.job == null || !s.prefilling() || batch.size() == batch.capacity()) {
                continue;
            }
            int[] p = s.job.request.prompt();
            int n = Math.min(p.length - s.promptDone, batch.capacity() - batch.size());
            for (int i = s.promptDone; i < s.promptDone + n; i++) {
                int index = batch.add(p[i], i, s.seq, i == p.length - 1);  // position i: the cache holds p[0..i)
                if (i == p.length - 1) {
                    s.batchIndex = index;  // logits only once the whole prompt is in
                }
            }
            s.inBatch = n;
            prompt = true;
        }
        return prompt;
    }

    /** After a successful decode: the batch's tokens are now in their sequences' caches. */
    private void commit(Batch batch) {
        long kv = 0;
        for (Slot s : slots) {
            if (s.job != null && s.inBatch > 0) {
                if (s.prefilling()) {
                    int[] p = s.job.request.prompt();
                    for (int i = s.promptDone; i < s.promptDone + s.inBatch; i++) {
                        s.appendCached(p[i]);
                    }
                    s.promptDone += s.inBatch;
                    stats.promptTokensComputed.addAndGet(s.inBatch);
                } else {
                    s.appendCached(s.nextToken);
                    s.nextToken = -1;
                }
            }
            kv += s.cachedLength;
        }
        stats.kvTokens.set(kv);
    }

    private void sampleNext(Slot s) {
        GenerationRequest r = s.job.request;
        int token;
        float logprob = Float.NaN;
        TopLogprobs top = null;
        try {
            token = s.sampler.sample(context, s.batchIndex);
            if (r.topLogprobs() >= 0) {
                logprob = context.tokenLogprob(s.batchIndex, token);
                top = context.topLogprobs(s.batchIndex, r.topLogprobs());
            }
        } catch (RuntimeException e) {
            fail(s, e);
            return;
        }
        s.generated++;
        stats.generatedTokens.incrementAndGet();
        boolean eog = model.isEndOfGeneration(token) && !r.ignoreEos();
        byte[] bytes = eog ? new byte[0] : model.tokenBytes(token, false);
        String text = eog ? "" : s.stops.append(s.utf8.append(bytes));
        s.job.listener.onToken(new TokenEvent(token, bytes, text, logprob, top));
        if (eog || s.stops.stopped()) {
            finish(s, FinishReason.STOP);
        } else if (s.generated >= r.maxTokens() || s.cachedLength + 1 >= perSequence) {
            finish(s, FinishReason.LENGTH);
        } else {
            s.nextToken = token;
        }
    }

    private void finish(Slot s, FinishReason reason) {
        Job job = s.job;
        if (reason != FinishReason.CANCELLED && !s.stops.stopped()) {
            // Text held back (an incomplete character, a possible stop string) is final now.
            String tail = s.stops.append(s.utf8.finish());
            tail += s.stops.flush();
            if (!tail.isEmpty()) {
                job.listener.onToken(new TokenEvent(TokenEvent.NO_TOKEN, new byte[0], tail, Float.NaN, null));
            }
        }
        Usage usage = new Usage(job.request.prompt().length, s.reusedPrompt, s.generated);
        release(s);
        job.listener.onFinish(reason, usage);
    }

    private void fail(Slot s, RuntimeException e) {
        Job job = s.job;
        context.removeTokens(s.seq, -1, -1);
        s.cachedLength = 0;
        release(s);
        job.listener.onError(e);
    }

    /** A decode failed: every generation that had tokens in the batch fails; their sequences start empty again. */
    private void failBatch(RuntimeException e) {
        for (Slot s : slots) {
            if (s.job != null && (s.batchIndex >= 0 || s.prefilling())) {
                fail(s, e);
            }
        }
    }

    private void release(Slot s) {
        if (s.sampler != null) {
            s.sampler.close();
            s.sampler = null;
        }
        // A cut-short prefill leaves a partial prompt in the cache: still a valid prefix for later requests.
        s.job = null;
        s.nextToken = -1;
        s.batchIndex = -1;
        stats.active.decrementAndGet();
    }

    @Override
    public void close() {
        running = false;
        wake();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Slot s : slots) {
            if (s.sampler != null) {
                s.sampler.close();
            }
        }
        context.close();
    }
}
