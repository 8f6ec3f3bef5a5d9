package dev.steer.engine;

import dev.steer.llama.Batch;
import dev.steer.llama.LayerProbe;
import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.LoraAdapter;
import dev.steer.llama.TopLogprobs;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The decode loop: continuous batching of many generations over the parallel sequences of one llama context.
 *
 * <p>Each step builds one batch from (1) the next token of every sequence that is generating and (2) prompt chunks of
 * sequences still prefilling, up to the batch size; decodes it; samples where logits were kept; and hands tokens to
 * the listeners. New requests join between steps, so a long prompt never stalls the streams already running.
 * A new prompt goes to the idle sequence whose cached tokens share the longest prefix with it, and only the rest is
 * computed. Every sequence may use {@code contextSize / parallel} positions. Steers ({@link Generation#steer}) are
 * applied between two steps: the sequence's cache is cut back to the fork and the correction is decoded like a short
 * prompt, so the context before the fork is never computed again.
 *
 * <p>LoRA adapters: llama.cpp applies adapters per context, not per sequence, so each step decodes the sequences of
 * one adapter together and then those of the next ({@link #step}); a generation keeps the adapter it started with
 * to its end, and an adapter switch happens only between two decodes, never inside one. A cached prefix is reused
 * only by a request for the adapter it was computed under. An adapter that is no longer served is {@link #retire}d
 * and freed once no generation uses it.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);

    /** Who frees the native context and samplers: close, or the decode thread if it outlived close's wait. */
    private final Object exit = new Object();
    private boolean exited;      // guarded by exit: the decode thread has left its loop
    private boolean freeOnExit;  // guarded by exit: close gave up waiting; the decode thread frees them
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
        /** its output, the one copy: the slot that runs it writes it, the listener's side reads it */
        final GenerationOutput output;
        final AtomicBoolean cancelled = new AtomicBoolean();

        Job(GenerationRequest request, GenerationListener listener) {
            this.request = request;
            this.listener = listener;
            this.output = GenerationOutput.startOf(request);
        }

        @Override
        public void cancel() {
            cancelled.set(true);
            wake();
        }

        @Override
        public CompletableFuture<SteerEvent> steer(int at, int[] correction, int maxTokens) {
            SteerCommand c = new SteerCommand(this, at, correction.clone(), maxTokens, new SteerFuture());
            if (correction.length == 0) {
                c.done.completeExceptionally(new SteerRefusedException(SteerRefusedException.Reason.EMPTY, "the correction is empty"));
                return c.done;
            }
            steers.add(c);
            wake();
            if (death != null) {
                failSteers(stopped());  // the thread died after this was queued, or before: no one else will
            }
            return c.done;
        }
    }

    /** A steer waiting for the decode thread. */
    private record SteerCommand(Job job, int at, int[] correction, int maxTokens, SteerFuture done) {}

    /**
     * A steer's future. {@code cancel} withdraws the steer, but only while the decode thread has not taken it up:
     * once taken, the steer is applied or fails as usual (its cache cut cannot be undone) and cancel returns false.
     * So a caller that gives up waiting knows whether the steer can still happen.
     */
    private static final class SteerFuture extends CompletableFuture<SteerEvent> {
        private final AtomicBoolean taken = new AtomicBoolean();

        /** The decode thread takes it up; false if it was withdrawn. */
        boolean take() {
            return taken.compareAndSet(false, true);
        }

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            return taken.compareAndSet(false, true) && super.cancel(mayInterruptIfRunning);
        }
    }

    /** A task for the decode thread, with the future its caller waits on (failed if the thread has died). */
    private record Task(Runnable run, CompletableFuture<?> done) {}

    /** How many alternatives a steer records at its fork. */
    static final int FORK_TOP = 10;

    private final LlamaModel model;
    private final LlamaContext context;
    /** The longest token sequence a layer probe reads: the scopes' {@code Scope.TOKENS}. */
    public static final int PROBE_TOKENS = 64;
    private final ConcurrentHashMap<Integer, LayerProbe> probes = new ConcurrentHashMap<>();
    private final Config config;
    private final int perSequence;
    private final Slot[] slots;
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final ConcurrentLinkedQueue<SteerCommand> steers = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Task> tasks = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<LoraAdapter> retiring = new ConcurrentLinkedQueue<>();
    private final List<LoraAdapter> retired = new ArrayList<>();   // decode thread: waiting for their last user
    private LoraAdapter applied;                                   // decode thread: the adapter set on the context now
    private final EngineStats stats = new EngineStats();
    private final List<Runnable> loadListeners = new CopyOnWriteArrayList<>();  // onLoadChange
    private final Thread thread;
    private volatile boolean running = true;
    /** System.nanoTime() when the decode thread began its current iteration; IDLE while it sleeps, waiting for work. */
    private final AtomicLong busySince = new AtomicLong(IDLE);
    private static final long IDLE = Long.MIN_VALUE;
    /** Why the decode thread ended, if it ended other than by close. Nothing is decoded any more. */
    private volatile Throwable death;

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

    /**
     * The probe of block {@code layer}'s input on this engine's model, made at the first call and kept until the
     * engine closes (it is a native object over the model the engine owns): routing reads it
     * ({@code dev.steer.adapters.Scope}) on request threads, the training thread's gate and at activation, never on
     * the decode thread.
     */
    public LayerProbe layerProbe(int layer) {
        if (!running) {
            throw new IllegalStateException("the engine is closed");
        }
        return probes.computeIfAbsent(layer, l -> LayerProbe.create(model, l, PROBE_TOKENS, config.threads()));
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
        LoraAdapter adapter = request.adapter();
        if (adapter != null && (adapter.model() != model || adapter.isClosed())) {
            throw new IllegalStateException("the adapter is not loaded for this model");
        }
        if (request.prompt().length >= perSequence) {
            throw new IllegalArgumentException("the prompt has " + request.prompt().length
                    + " tokens; this server's context per request is " + perSequence + " tokens");
        }
        Job job = new Job(request, listener);
        // Before it is queued, so before any other callback: whoever reads the output has it from the start.
        listener.onSubmitted(job.output);
        synchronized (waiting) {
            if (death != null) {
                throw stopped();  // checked under the lock the dying thread drains the queue under: nothing is left behind
            }
            if (waiting.size() >= config.maxQueue()) {
                stats.rejected.incrementAndGet();
                throw new QueueFullException(config.maxQueue());
            }
            waiting.add(job);
            stats.queued.set(waiting.size());
            stats.requests.incrementAndGet();
            waiting.notifyAll();
        }
        loadChanged();
        return job;
    }

    /** Generations running or waiting now. */
    public long load() {
        return stats.active.get() + stats.queued.get();
    }

    /**
     * {@code listener} runs after work arrives (on the submitting thread) and after a generation ends (on the decode
     * thread), to read {@link #load}. It must be quick and must not block: the training job uses it to give serving
     * its cores back at once.
     */
    public void onLoadChange(Runnable listener) {
        loadListeners.add(listener);
    }

    private void loadChanged() {
        for (Runnable r : loadListeners) {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.warn("a load listener failed", e);
            }
        }
    }

    /**
     * Runs {@code task} on the decode thread between two steps. llama.cpp loads and frees adapters by changing the
     * model's adapter list, which a decode reads; doing that here keeps the two apart.
     */
    public <T> CompletableFuture<T> onDecodeThread(Supplier<T> task) {
        CompletableFuture<T> done = new CompletableFuture<>();
        tasks.add(new Task(() -> {
            try {
                done.complete(task.get());
            } catch (RuntimeException e) {
                done.completeExceptionally(e);
            } catch (Error e) {
                done.completeExceptionally(e);  // its caller hears of it; the thread then dies (loop)
                throw e;
            }
        }, done));
        wake();
        if (!running) {
            done.completeExceptionally(new IllegalStateException("the engine is stopped"));
        }
        if (death != null) {
            failTasks(stopped());
        }
        return done;
    }

    /**
     * How long the decode thread has been inside its current iteration (hand-offs, then one decode per adapter, and
     * the listeners of what they produced), in nanoseconds; 0 while it waits for work. A value that keeps growing
     * means one step is stuck: inside llama_decode, or in a listener (a SQLite write waiting for a lock). Nothing
     * can end such a step from outside without corrupting the context, so this only reports it.
     */
    public long stepNanos() {
        long since = busySince.get();
        return since == IDLE ? 0 : Math.max(0, System.nanoTime() - since);
    }

    /** Why the decode thread ended, or null while it runs (or was closed). */
    public Throwable death() {
        return death;
    }

    private EngineUnavailableException stopped() {
        return new EngineUnavailableException("the decode loop has stopped: " + death, death);
    }

    /**
     * The adapter will not be given to new generations: free it once no running or waiting generation uses it.
     * Cached prefixes computed under it are dropped then.
     */
    public void retire(LoraAdapter adapter) {
        retiring.add(adapter);
        wake();
    }

    private void wake() {
        synchronized (waiting) {
            waiting.notifyAll();
        }
    }

    // ---------------------------------------------------------------- the loop (decode thread only from here on)

    private void loop() {
        try {
            serve();
        } catch (Throwable t) {
            // An Error (out of memory, a listener's StackOverflowError): this thread cannot go on. Record why, for
            // /health, and fail everything that waits on it, so that no client and no caller waits for ever.
            death = t;
            busySince.set(IDLE);
            LOG.error("the decode thread died; nothing is served any more", t);
            EngineUnavailableException e = stopped();
            for (Slot s : slots) {
                if (s.job != null) {
                    Job job = s.job;
                    s.steerFinished(null, e);
                    s.job = null;  // its native state is left as it is: nothing decodes again
                    tellError(job, e);
                }
            }
            List<Job> queued;
            synchronized (waiting) {
                queued = new ArrayList<>(waiting);
                waiting.clear();
                stats.queued.set(0);
            }
            queued.forEach(j -> tellError(j, e));
            failSteers(e);
            failTasks(e);
        } finally {
            synchronized (exit) {
                exited = true;
                if (freeOnExit) {
                    freeNative();  // close gave up waiting for this thread: its step is over now
                }
            }
        }
    }

    private void failSteers(RuntimeException e) {
        for (SteerCommand c; (c = steers.poll()) != null; ) {
            c.done().completeExceptionally(e);
        }
    }

    private void failTasks(RuntimeException e) {
        for (Task t; (t = tasks.poll()) != null; ) {
            t.done().completeExceptionally(e);
        }
    }

    private void serve() {
        Batch batch = context.newBatch();
        while (running) {
            busySince.set(System.nanoTime());
            boolean worked;
            try {
                worked = iteration(batch);
            } catch (RuntimeException e) {
                // One generation's failure is handled where it happens (guarded listener calls, failBatch). This is
                // anything else: a native call between two decodes, a bug. What the sequences hold is not known
                // any more, so their generations fail and they start empty; the loop goes on serving.
                LOG.error("the decode loop failed outside a generation; failing the running ones", e);
                for (Slot s : slots) {
                    if (s.job != null) {
                        fail(s, e);
                    }
                }
                worked = true;
            }
            if (!worked) {
                busySince.set(IDLE);
                sleepUntilWork();
            }
        }
        busySince.set(IDLE);
    }

    /** One pass of the loop: hand-offs, then one decode per adapter with work; false if there was nothing to decode. */
    private boolean iteration(Batch batch) {
        for (Task t; (t = tasks.poll()) != null; ) {
            long t0 = System.nanoTime();
            t.run().run();
            stats.longestTaskNanos.accumulateAndGet(System.nanoTime() - t0, Math::max);
        }
        admitWaiting();
        dropCancelled();
        applySteers();
        freeRetired();
        boolean worked = false;
        for (LoraAdapter a : adaptersWithWork()) {
            worked |= step(batch, a);
        }
        return worked;
    }

    /** The adapters (null: the base model) of the sequences that have something to decode, in slot order. */
    private List<LoraAdapter> adaptersWithWork() {
        List<LoraAdapter> out = new ArrayList<>(1);
        for (Slot s : slots) {
            if (s.job != null && (s.prefilling() || s.nextToken >= 0) && !out.contains(s.adapter)) {
                out.add(s.adapter);
            }
        }
        return out;
    }

    /** One decode of the sequences that generate with {@code adapter}; false if they had nothing to decode. */
    private boolean step(Batch batch, LoraAdapter adapter) {
        batch.clear();
        boolean prompt = fill(batch, adapter);
        if (batch.isEmpty()) {
            return false;
        }
        long t0 = System.nanoTime();
        try {
            apply(adapter);  // part of this batch's decode: a failure fails the batch
            context.decode(batch);
        } catch (RuntimeException e) {
            failBatch(e);
            return true;
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
        return true;
    }

    private void apply(LoraAdapter adapter) {
        if (adapter != applied) {
            context.setAdapters(adapter == null ? List.of() : List.of(new LlamaContext.AdapterScale(adapter, 1f)));
            applied = adapter;
            stats.adapterSwitches.incrementAndGet();
        }
    }

    /** Frees the retired adapters that nothing uses any more. */
    private void freeRetired() {
        for (LoraAdapter a; (a = retiring.poll()) != null; ) {
            if (!retired.contains(a)) {
                retired.add(a);
            }
        }
        retired.removeIf(a -> {
            for (Slot s : slots) {
                if (s.job != null && s.adapter == a) {
                    return false;
                }
            }
            synchronized (waiting) {
                for (Job j : waiting) {
                    if (j.request.adapter() == a) {
                        return false;
                    }
                }
            }
            for (Slot s : slots) {
                if (s.cacheAdapter == a) {
                    context.removeTokens(s.seq, -1, -1);
                    s.dropCache();
                }
            }
            if (applied == a) {
                context.setAdapters(List.of());
                applied = null;
            }
            try {
                a.close();
            } catch (RuntimeException e) {
                LOG.warn("could not free a retired adapter: {}", e.getMessage());
            }
            return true;
        });
    }

    private void sleepUntilWork() {
        synchronized (waiting) {
            if (waiting.isEmpty() && steers.isEmpty() && tasks.isEmpty() && retiring.isEmpty() && running) {
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
                        // K/V computed under another adapter are other numbers: never a prefix for this request.
                        int p = s.cacheAdapter == job.request.adapter() ? s.commonPrefix(job.request.prompt()) : 0;
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
        GenerationRequest r = job.request;
        int[] prompt = r.prompt();
        // Keep the shared prefix; at least the last prompt token is decoded again, for its logits, and so is a
        // steer's fork token, whose logits are recorded.
        int forkAt = r.steer() == null ? -1 : r.outputStart() + r.steer().at() - 1;
        int keep = Math.min(prefix, prompt.length - 1);
        if (forkAt >= 0) {
            keep = Math.min(keep, forkAt);
        }
        LlamaSampler sampler = null;
        try {
            if (!context.removeTokens(s.seq, keep, -1)) {
                context.removeTokens(s.seq, -1, -1);  // this cache cannot cut a range: start over
                keep = 0;
            }
            sampler = LlamaSampler.create(model, r.sampling());
            for (int i = r.outputStart(); i < prompt.length; i++) {
                sampler.accept(prompt[i]);  // an answer being continued: the grammar resumes where it stands
            }
        } catch (RuntimeException e) {
            if (sampler != null) {
                sampler.close();
            }
            tellError(job, e);
            return;
        }
        s.start(job, keep, sampler);
        stats.active.incrementAndGet();
        stats.promptTokensCached.addAndGet(keep);
    }

    /** Applies queued steers to their running generations; a steer that cannot be applied fails and changes nothing. */
    private void applySteers() {
        for (SteerCommand c; (c = steers.poll()) != null; ) {
            if (!c.done().take()) {
                continue;  // withdrawn: its caller gave up waiting and was told nothing changed
            }
            Slot s = null;
            for (Slot x : slots) {
                if (x.job == c.job()) {
                    s = x;
                }
            }
            try {
                if (s == null) {
                    boolean queued;
                    synchronized (waiting) {
                        queued = waiting.contains(c.job());
                    }
                    throw queued ? SteerRefusedException.notStarted()
                            : new SteerRefusedException(SteerRefusedException.Reason.FINISHED, "the generation has finished");
                }
                steer(s, c);
            } catch (RuntimeException e) {
                c.done().completeExceptionally(e);
            } catch (Error e) {
                c.done().completeExceptionally(e);  // taken up, so no one else would complete it; the thread then dies
                throw e;
            }
        }
    }

    /** Applies a steer to its generation's slot: the one check ({@link SteerSurgery#check}), then the slot's cut. */
    private void steer(Slot s, SteerCommand c) {
        if (s.prefilling()) {
            if (s.forkInput < 0) {
                throw SteerRefusedException.notStarted();
            }
            throw new SteerRefusedException(SteerRefusedException.Reason.IN_FLIGHT, "another steer is still being applied");
        }
        int length = s.out.writtenLength();
        LlamaSampler next = SteerSurgery.check(model, c.job().request.sampling(), s.out.written(0, length), length,
                s.outputStart, perSequence, c.at(), c.correction());
        s.steer(context, c.at(), c.correction(), next, c.maxTokens(), c.done());  // from here on nothing can fail
        stats.steers.incrementAndGet();
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
                    tellFinish(j, FinishReason.CANCELLED, new Usage(j.request.prompt().length, 0, 0));
                    return true;
                }
                return false;
            });
            stats.queued.set(waiting.size());
        }
    }

    /**
     * Fills the batch from the sequences of one adapter: generating sequences first (one token each), then prompt
     * chunks. True if it holds prompt.
     */
    private boolean fill(Batch batch, LoraAdapter adapter) {
        for (Slot s : slots) {
            s.batchIndex = -1;
            s.inBatch = 0;
            s.forkBatchIndex = -1;
            if (s.job != null && s.adapter == adapter && !s.prefilling() && s.nextToken >= 0) {
                s.batchIndex = batch.add(s.nextToken, s.cachedLength, s.seq, true);
                s.inBatch = 1;
            }
        }
        boolean prompt = false;
        for (Slot s : slots) {
            if (s.job == null || s.adapter != adapter || !s.prefilling() || batch.size() == batch.capacity()) {
                continue;
            }
            int[] in = s.input;
            int n = Math.min(in.length - s.inputDone, batch.capacity() - batch.size());
            for (int j = 0; j < n; j++) {
                int i = s.inputDone + j;
                boolean last = i == in.length - 1;
                int index = batch.add(in[i], s.cachedLength + j, s.seq, last || i == s.forkInput);
                if (i == s.forkInput) {
                    s.forkBatchIndex = index;
                }
                if (last) {
                    s.batchIndex = index;  // sampling logits only once all the input is in
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
                    for (int i = s.inputDone; i < s.inputDone + s.inBatch; i++) {
                        s.appendCached(s.input[i]);
                    }
                    s.inputDone += s.inBatch;
                    stats.promptTokensComputed.addAndGet(s.inBatch);
                    if (s.forkBatchIndex >= 0) {
                        reportSteer(s);  // may fail this generation (its listener threw): the others go on
                    }
                } else {
                    s.appendCached(s.nextToken);
                    s.nextToken = -1;
                }
            }
            kv += s.cachedLength;
        }
        stats.kvTokens.set(kv);
    }

    /** The fork's logits are in: the steer is complete; tell the listener, then whoever asked for it. */
    private void reportSteer(Slot s) {
        SteerEvent e = s.forkDecoded(context.topLogprobs(s.forkBatchIndex, FORK_TOP));
        try {
            s.job.listener.onSteer(e);  // stores the steer: a failure there (disk full, SQLITE_BUSY) fails the steer
        } catch (RuntimeException failed) {
            fail(s, failed);  // the output's readers never see this steer
            return;
        }
        s.steerShown();
        s.steerFinished(e, null);
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
        boolean eog = model.isEndOfGeneration(token) && !r.ignoreEos();
        s.sampled(token, eog);
        stats.generatedTokens.incrementAndGet();
        byte[] bytes = eog ? new byte[0] : model.tokenBytes(token, false);
        String text = eog ? "" : s.stops.append(s.utf8.append(bytes));
        try {
            s.job.listener.onToken(new TokenEvent(token, bytes, text, logprob, top));
        } catch (RuntimeException e) {
            fail(s, e);
            return;
        }
        if (eog || s.stops.stopped()) {
            finish(s, FinishReason.STOP);
        } else if (s.budget <= 0 || s.cachedLength + 1 >= perSequence) {
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
                try {
                    job.listener.onToken(new TokenEvent(TokenEvent.NO_TOKEN, new byte[0], tail, Float.NaN, null));
                } catch (RuntimeException e) {
                    fail(s, e);
                    return;
                }
            }
        }
        Usage usage = new Usage(job.request.prompt().length, s.reusedPrompt, s.generated);
        release(s);
        tellFinish(job, reason, usage);
    }

    /**
     * The generation on {@code s} fails: its steer in flight fails with the cause, its sequence starts empty, and its
     * listener hears why. The other generations are not touched.
     */
    private void fail(Slot s, RuntimeException e) {
        Job job = s.job;
        s.steerFinished(null, new SteerFailedException(e));
        try {
            context.removeTokens(s.seq, -1, -1);
        } catch (RuntimeException again) {
            LOG.warn("could not clear sequence {}: {}", s.seq, again.getMessage());
        }
        s.dropCache();
        release(s);
        tellError(job, e);
    }

    /**
     * A generation's last call, onFinish. If the listener throws there (it stores the last steer's continuation),
     * the generation has failed after all: the listener is told so, and its client gets an error instead of an end.
     */
    private static void tellFinish(Job job, FinishReason reason, Usage usage) {
        try {
            job.listener.onFinish(reason, usage);
        } catch (RuntimeException e) {
            tellError(job, e);
        }
    }

    /** A generation's last call, onError; a listener that throws even there has no one left to tell. */
    private static void tellError(Job job, RuntimeException e) {
        try {
            job.listener.onError(e);
        } catch (RuntimeException again) {
            LOG.warn("a listener failed while told of its generation's failure: {}", again.getMessage());
        }
    }

    /** A decode failed: every generation that had tokens in the batch fails; their sequences start empty again. */
    private void failBatch(RuntimeException e) {
        for (Slot s : slots) {
            if (s.job != null && s.inBatch > 0) {
                fail(s, e);
            }
        }
    }

    private void release(Slot s) {
        s.release();
        stats.active.decrementAndGet();
        loadChanged();
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
        synchronized (exit) {
            if (!exited) {
                // A decode step still running (a stuck graph, a listener that blocks) uses the context and the
                // samplers: freed under it, its next call fails, or crashes the JVM if the free lands during a
                // native call. The thread frees them when it ends.
                freeOnExit = true;
                LOG.warn("the decode thread did not stop within 10 s; it frees its context and samplers when it ends");
                return;
            }
        }
        freeNative();
    }

    private void freeNative() {
        for (Slot s : slots) {
            if (s.sampler != null) {
                s.sampler.close();
            }
        }
        context.close();  // releases the adapters set on it; their owners close them
        probes.values().forEach(LayerProbe::close);
    }
}
