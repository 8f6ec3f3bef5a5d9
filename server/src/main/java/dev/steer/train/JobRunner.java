package dev.steer.train;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.AdapterVersion;
import dev.steer.adapters.Scope;
import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.json.Json;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraAdapter;
import dev.steer.llama.LoraTrainer;
import dev.steer.steer.Accepted;
import dev.steer.steer.SteerRecord;
import dev.steer.steer.SteerStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs fine-tuning jobs in the background, one at a time, oldest first: steers → {@link TrainingSet} → LoRA trainer
 * (reading the weights serving uses, with its own threads) → adapter file → registry → {@link EvalGate} → activation.
 *
 * <p>Failure handling: a job that throws is marked failed with the reason; a cancelled one stops between two
 * optimizer steps; a crash leaves the job "running" in the store, which the next start turns into "failed". The
 * adapter file is written under a temporary name and renamed, and registered only when complete, so no path leads
 * to a half-written adapter.
 */
public final class JobRunner implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(JobRunner.class);
    private final JobStore jobs;
    private final SteerStore steers;
    private final AdapterRegistry registry;
    private final ServedAdapters served;
    private final Engine engine;
    private final LlamaModel model;
    private final ChatTemplates templates;
    private final Greedy greedy;
    private final BaseAnswers baseAnswers;
    private final References references = new References();
    /** Held while a trainer exists, a job's or the preparation's: one at a time (memory, cores). */
    private final ReentrantLock trainerTurn = new ReentrantLock();
    private final JobPreparation preparation;
    private final String baseSha256;
    private final Threads threads;
    private final Map<String, JobProgress> progress = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile String running;
    private volatile LoraTrainer training;  // the running job's trainer, whose thread count follows the engine's load
    private volatile boolean cancelRunning;
    private volatile boolean open = true;

    /**
     * CPU threads a job trains with: {@code serving} while the engine has generations running or waiting, {@code idle}
     * while it has none. A job on a quiet server trains on every core (a small machine's job takes about half the time);
     * a request that arrives lowers the count at once ({@link Engine#onLoadChange}), and the trainer reads it before
     * each graph (one example's forward or backward, well under a second here), so serving gets its cores back within
     * one graph, not one step.
     */
    public record Threads(int serving, int idle) {
        public Threads {
            if (serving < 1 || idle < serving) {
                throw new IllegalArgumentException("training threads: 1 <= serving <= idle, got " + serving + ", " + idle);
            }
        }

        /** {@code --train-threads}: n > 0 is n always; 0 (the default) is half the cores beside serving, all of them alone. */
        public static Threads of(int configured, int cores) {
            return configured > 0 ? new Threads(configured, configured) : new Threads(Math.max(1, cores / 2), Math.max(1, cores));
        }

        /** The count for an engine with {@code generations} running or waiting. */
        public int with(long generations) {
            return generations == 0 ? idle : serving;
        }
    }

    /** @param threads CPU threads for training (see {@link Threads}) */
    public JobRunner(JobStore jobs, SteerStore steers, AdapterRegistry registry, ServedAdapters served, Engine engine,
                     ChatTemplates templates, String baseSha256, Threads threads) {
        this.jobs = jobs;
        this.steers = steers;
        this.registry = registry;
        this.served = served;
        this.engine = engine;
        this.model = engine.model();
        this.templates = templates;
        this.greedy = new Greedy(engine, served);
        this.baseAnswers = new BaseAnswers(greedy::answers);
        this.baseSha256 = baseSha256;
        this.threads = threads;
        this.preparation = new JobPreparation(model, templates, engine, greedy, baseAnswers, references, steers, trainerTurn, this::trainingThreads);
        engine.onLoadChange(this::loadChanged);
        int lost = jobs.failInterrupted();
        if (lost > 0) {
            LOG.warn("{} job(s) were running when the server stopped; marked failed", lost);
        }
        this.thread = new Thread(this::loop, "steer-training");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /**
     * Queues a job (durably) and returns it. A default ("auto") block count is resolved against this model first, so
     * the job and its adapter's lineage say how many blocks it adapts.
     */
    public JobStore.Job submit(JobSpec spec) {
        String id = "ftjob-" + UUID.randomUUID().toString().replace("-", "");
        Hyperparameters h = spec.hyperparameters();
        JobSpec resolved = new JobSpec(spec.model(), spec.method(), h.withLoraLayers(h.adaptedLayers(model.info().layers())), spec.filters(), spec.eval());
        JobStore.Job job = jobs.insert(id, resolved);
        synchronized (this) {
            notifyAll();
        }
        return job;
    }

    /** Cancels a queued or running job; false if it had already finished. */
    public boolean cancel(String id) {
        if (jobs.cancelQueued(id)) {
            return true;
        }
        if (id.equals(running)) {
            cancelRunning = true;
            return true;
        }
        return false;
    }

    /**
     * Prepares the next job in the background ({@link JobPreparation}): the base model's answers to the built-in
     * prompts (once), then the base model's side ({@link References}) of the built-in examples and of every answer
     * steered or let run, as a default job reads them, so that a job started after a person's steers computes
     * neither (~25 s of a 50-steer SmolLM2-135M job on 2 cores). The server calls this when it starts with steers of
     * its model stored, and after each record is stored or a steer's continuation written (a person who steers is
     * likely to train).
     *
     * @param modelId the served model's name ({@code base@base} serves it without an adapter)
     */
    public void prepare(String modelId) {
        if (open) {
            preparation.wanted(modelId);
        }
    }

    /** The first block a job's LoRA adapts: 0 for all of them, else the first of the last {@code adapted}. */
    static int firstAdapted(int layers, int adapted) {
        return adapted < layers ? layers - adapted : 0;
    }

    /** How many examples' base-model side is kept between jobs ({@link References}; for tests). */
    public int keptReferences() {
        return references.size();
    }

    /** How many of them the background preparation has computed since the server started (for tests). */
    public long preparedExamples() {
        return preparation.computed();
    }

    /** Live progress of a job run since this server started, or null. */
    public JobProgress progress(String id) {
        return progress.get(id);
    }

    private void loop() {
        while (open) {
            JobStore.Job next = jobs.nextQueued().orElse(null);
            if (next == null) {
                synchronized (this) {
                    try {
                        wait(1000);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                continue;
            }
            if (!jobs.start(next.id())) {
                continue;  // cancelled between the two reads
            }
            JobProgress p = new JobProgress(next.id());
            progress.put(next.id(), p);
            running = next.id();
            cancelRunning = false;
            trainerTurn.lock();  // a preparation pass gives way after its example in progress
            try {
                run(next, p);
            } catch (Cancelled e) {
                if (open) {
                    p.message("warn", "Job cancelled after step " + e.step + ".");
                    jobs.finish(next.id(), JobStore.Status.CANCELLED, null, null, result(p, null));
                } else {
                    p.message("error", "The server stopped during the job, after step " + e.step + ".");
                    jobs.finish(next.id(), JobStore.Status.FAILED, "the server stopped while the job was running", null, result(p, null));
                }
            } catch (RuntimeException | IOException e) {
                String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                p.message("error", "Job failed: " + why);
                jobs.finish(next.id(), JobStore.Status.FAILED, why, null, result(p, null));
            } finally {
                trainerTurn.unlock();
                p.end();  // after jobs.finish: the final state is stored before any stream ends
                running = null;
                preparation.jobEnded();
            }
        }
    }

    private static final class Cancelled extends RuntimeException {
        final int step;

        Cancelled(int step) {
            super("cancelled", null, false, false);
            this.step = step;
        }
    }

    /** One training example and its base-model reference (what the KL and preference terms compare against). */
    private record Example(LoraTrainer.Example example, LoraTrainer.Reference reference) {}

    private void run(JobStore.Job job, JobProgress p) throws IOException {
        JobSpec spec = job.spec();
        Hyperparameters h = spec.hyperparameters();
        JobSpec.Filters f = spec.filters();
        List<SteerRecord> records = steers.list(new SteerStore.Filter(f.sessionId(), f.tag(), spec.model(), f.since(), f.until(), false));
        TrainingSet set = TrainingSet.split(records, h.validationSplit(), h.seed(), new TrainingSet.StopReading(h.stops(), endOfTurn(model)));
        if (set.train().isEmpty()) {
            throw new IllegalArgumentException("no steers with a correction" + (h.stops() != Hyperparameters.Stops.IGNORE ? " nor stops that teach" : "")
                    + " match the job's filters (" + records.size() + " records matched)");
        }
        long t0 = System.nanoTime();
        String base = AdapterVersion.pinnedName(spec.model(), null);
        // The replay set, approved text nobody steered, kept under the KL term: the newest answers the person let run
        // (up to half of it), then the base model's own answers to built-in ordinary prompts; the probes (other
        // prompts) are the gate's. The built-in ones answered greedily by the serving engine, on the base. Only
        // answers the base model wrote: one an adapter wrote may say a habit the person taught and approved, which
        // the KL term would pull back to the base. The base model's answers to the built-in prompts are kept between
        // jobs (BaseAnswers).
        boolean kl = h.klWeight() > 0;
        List<Accepted> accepted = kl ? acceptedForReplay(steers.acceptedFromBase(spec.model(), h.replay()), h.replay() / 2) : List.of();
        int builtIn = Math.min(h.replay() - accepted.size(), ReplayPrompts.REPLAY.size());
        List<String> replayPrompts = kl ? ReplayPrompts.REPLAY.subList(0, builtIn) : List.of();
        List<int[]> replayTokens = new ArrayList<>(ReplayPrompts.render(model, templates, replayPrompts));
        List<int[]> replayAnswers = new ArrayList<>(baseAnswers.answers(base, replayTokens, REPLAY_TOKENS));
        for (Accepted a : accepted) {
            replayTokens.add(a.promptTokens());
            replayAnswers.add(Arrays.copyOf(a.outputTokens(), Math.min(a.outputTokens().length, REPLAY_TOKENS)));
        }
        List<int[]> probeTokens = ReplayPrompts.render(model, templates, ReplayPrompts.PROBES);
        List<int[]> probeAnswers = baseAnswers.answers(base, probeTokens, EvalGate.PROBE_TOKENS);
        boolean watching = h.earlyStopping() && !set.heldOut().isEmpty();  // without held-out forks there is nothing to stop on
        List<int[]> watchTokens = watching ? ReplayPrompts.render(model, templates, ReplayPrompts.WATCH) : List.of();
        List<int[]> watchAnswers = baseAnswers.answers(base, watchTokens, WATCH_TOKENS);
        List<LoraTrainer.Example> replay = new ArrayList<>();
        for (int i = 0; i < replayTokens.size(); i++) {
            LoraTrainer.Example e = replayExample(replayTokens.get(i), replayAnswers.get(i));
            if (e != null) {
                replay.add(e);
            }
        }
        int count = set.train().size() + replay.size();
        int batch = Math.min(h.batchSize(), count);
        int perEpoch = (count + batch - 1) / batch;
        // The on-policy epochs train on twice the examples: each answer and replay prompt again, continued by the
        // adapter itself (at most; an empty continuation is left out).
        int onPolicy = kl ? Math.min(h.onPolicy(), h.nEpochs()) : 0;
        int perOnPolicyEpoch = (2 * count + batch - 1) / batch;
        int total = perEpoch * (h.nEpochs() - onPolicy) + perOnPolicyEpoch * onPolicy;
        int layers = model.info().layers();
        int adapted = h.adaptedLayers(layers);
        p.message("info", String.format("Training on %d steers in %d answers (%d answers held out) and %d replay answers (%d of them answers let run without a steer), %d steps of batch %d; LoRA rank %d on %s; loss: %s.",
                set.train().stream().mapToInt(i -> i.steerIds().size()).sum(), set.train().size(), set.heldOut().size(),
                replay.size(), accepted.size(), total, batch, h.loraRank(), adapted == layers ? "all " + layers + " blocks" : "the last " + adapted + " of " + layers + " blocks",
                lossTerms(h)) + (h.emaDecay() > 0 ? String.format(" The adapter %s is the moving average of the weights (decay %s per step).",
                h.earlyStopping() ? "measured, kept and saved" : "saved", h.emaDecay()) : "")
                + (h.checkpointSegments() >= 2 ? checkpointingRuns(Math.min(h.checkpointSegments(), adapted))
                   : h.activationCheckpointing() ? " Activation checkpointing of every block (and of the attention's activations)." : ""));
        Path file = registry.dir().resolve(".job-" + job.id() + ".gguf");
        EvalGate.Report report;
        AdapterRegistry.Version v = null;
        try (LoraTrainer t = LoraTrainer.create(model, h.targetModules(), h.loraRank(), h.loraAlpha(), adapted, h.seed(), trainingThreads())) {
            if (h.checkpointSegments() >= 2) {
                t.checkpointing(h.checkpointSegments());
            } else {
                t.checkpointing(h.activationCheckpointing());
            }
            // A job that asks for checkpointing trades time for memory: the attention's activations are computed
            // again too (docs/trainer.md, "Recomputed activations"); otherwise only the ones that cost no time.
            t.recompute(h.checkpointing() ? LoraTrainer.Recompute.ATTENTION : LoraTrainer.Recompute.ELEMENTWISE);
            // The attention probabilities and the FFN's gate and up kept in 16 bits between the passes: about a third
            // less graph memory, the same speed, the same learning (docs/training.md, "Activations kept in 16 bits").
            t.keepActivationsIn16Bits(true);
            training = t;
            LoraTrainer.Weights w = h.weights();
            Set<Integer> guarded = w.guard() > 0 ? correctionTokens(set.train()) : Set.of();
            // The base model's side of each example, kept between jobs (References): most were computed while the
            // person steered (JobPreparation); what is missing is computed now, and kept for the next job.
            int first = t.firstAdapted();
            long tReferences = System.nanoTime();
            long ready = Stream.concat(set.train().stream().map(TrainingSet.Item::example), replay.stream())
                    .filter(e -> references.has(first, e)).count();
            List<Example> examples = new ArrayList<>();
            for (TrainingSet.Item i : set.train()) {
                LoraTrainer.Example e = i.example();  // without a KL or guard weight the trainer leaves its keep rows out
                // References only for the terms that use them: the preference term's span log-probs, the keep rows'.
                LoraTrainer.Reference ref = kl || w.dpo() > 0 || w.guard() > 0 ? references.reference(t, e) : new LoraTrainer.Reference(0, 0);
                examples.add(new Example(e, guarded.isEmpty() ? ref : ref.guarding(e, guarded)));
            }
            for (LoraTrainer.Example e : replay) {
                LoraTrainer.Reference ref = references.reference(t, e);
                examples.add(new Example(e, guarded.isEmpty() ? ref : ref.guarding(e, guarded)));
            }
            if (kl || w.dpo() > 0 || w.guard() > 0) {
                p.message("info", String.format("The base model's side of %d of the %d examples (references, the blocks below the adapted ones) was ready before the job%s.",
                        ready, examples.size(), ready == examples.size() ? "" : String.format(Locale.ROOT, "; the rest took %.1f s", (System.nanoTime() - tReferences) / 1e9)));
            }
            Checkpoints checkpoints = watching
                    ? new Checkpoints(t, model, set.heldOut(), watchTokens, watchAnswers, spec.eval().maxChanged()) : null;
            WeightAverage average = h.emaDecay() > 0 ? new WeightAverage(h.emaDecay()) : null;
            int checkEvery = Math.max(1, perEpoch / CHECKS_PER_EPOCH);
            Random order = new Random(h.seed());
            long tokens = 0, tTrain = System.nanoTime();
            int step = 0;
            training:
            for (int epoch = 1; epoch <= h.nEpochs(); epoch++) {
                if (epoch == h.nEpochs() - onPolicy + 1) {
                    List<LoraTrainer.Example> own = ownContinuations(t, job.id(), set.train(), replayTokens, h.unlikelihoodWeight() > 0);
                    for (LoraTrainer.Example e : own) {
                        // (the own text has no correction inside, so the guard holds nothing there)
                        examples.add(new Example(e, reference(t, e, guarded)));
                    }
                    long repeating = own.stream().filter(Repeats::avoids).count();
                    p.message("info", String.format("From epoch %d on, also training on the adapter's own text: %d continuations after the corrections and replay answers, kept under the KL term%s.",
                            epoch, own.size(), h.unlikelihoodWeight() > 0 ? "; " + repeating + " of them start repeating the answer, made unlikely there" : ""));
                }
                for (List<Example> b : TrainingSet.batches(examples, batch, x -> x.example().tokens().length, order)) {
                    if (cancelRunning || !open) {
                        throw new Cancelled(step);
                    }
                    t.threads(trainingThreads());  // also here: a missed change costs one step at most
                    LoraTrainer.Optimizer o = h.optimizerAt(step, total);
                    List<LoraTrainer.Example> exs = b.stream().map(Example::example).toList();
                    LoraTrainer.StepResult r = t.step(exs, b.stream().map(Example::reference).toList(), w, o);
                    if (!Float.isFinite(r.loss()) || !Float.isFinite(r.gradNorm())) {
                        throw new IllegalStateException("the loss became " + r.loss() + " (gradient norm " + r.gradNorm()
                                + ") at step " + (step + 1) + "; lower the learning rate");
                    }
                    step++;
                    if (average != null) {
                        average.update(t.snapshot());
                    }
                    tokens += TrainingSet.tokens(exs);
                    double seconds = (System.nanoTime() - tTrain) / 1e9;
                    p.stepped(step, total, epoch, r.loss(), r.gradNorm(), o.learningRate(), tokens, tokens / seconds, seconds / step * (total - step));
                    if (checkpoints != null && (step % checkEvery == 0 || step == total)) {
                        Checkpoints.Check c = measure(t, checkpoints, average, step);
                        p.message("info", String.format("Check at step %d: %d of %d held-out forks learned, %d of %d watched answers changed.",
                                step, c.learned(), c.forks(), c.changed(), c.watched()));
                        if (checkpoints.done()) {
                            p.message("info", "Every held-out fork is learned, within the bound on changed answers (max_changed): stopping at step " + step + " of " + total + ".");
                            break training;
                        }
                        if (checkpoints.stalled()) {
                            p.message("info", String.format("No better checkpoint in the last %d checks: stopping at step %d of %d.",
                                    Checkpoints.PATIENCE, step, total));
                            break training;
                        }
                    }
                }
            }
            if (checkpoints != null) {
                checkpoints.restoreBest();
                Checkpoints.Check b = checkpoints.best();
                p.message("info", String.format("Keeping the checkpoint of step %d (%d of %d held-out forks learned, %d of %d watched answers changed).",
                        b.step(), b.learned(), b.forks(), b.changed(), b.watched()));
            } else if (average != null) {
                t.restore(average.weights());
            }
            t.save(file);
            // Which prompts it serves under the plain model name: those like the ones its steers were made on (held-out
            // answers too: the person steered them, and the gate then judges its held-out forks on the adapter) more
            // than like ordinary prompts nobody steered (Scope), compared by the input of the first block the adapter
            // changes (what the adapter reads); or every prompt.
            Scope scope = spec.eval().scoped() ? new Scope(Stream.concat(set.train().stream(), set.heldOut().stream())
                    .map(i -> prompt(i.example())).toList(), unsteeredPrompts(model, templates, replayTokens), 0, first) : null;
            // Registered before the gate (inactive), so the gate can generate with it through the engine (@vN).
            v = registry.register(file, new AdapterRegistry.Lineage(spec.model(), baseSha256, job.id(),
                    set.train().stream().flatMap(i -> i.steerIds().stream()).toList(),
                    set.heldOut().stream().flatMap(i -> i.steerIds().stream()).toList(),
                    Json.tree(h).getAsJsonObject(), new JsonObject(), "pending"), scope);
            List<EvalGate.Probe> probes = new ArrayList<>();
            for (int i = 0; i < probeTokens.size(); i++) {
                LoraTrainer.Example e = replayExample(probeTokens.get(i), probeAnswers.get(i));
                if (e != null) {
                    probes.add(new EvalGate.Probe(ReplayPrompts.PROBES.get(i), probeTokens.get(i), probeAnswers.get(i), e, references.reference(t, e)));
                }
            }
            p.message("info", "Checking the adapter: held-out steers, probes nobody steered, canary.");
            Predicate<int[]> serves = scope == null ? prompt -> true : scope.router(model, engine::layerProbe)::serves;
            report = EvalGate.evaluate(t, new EvalGate.Base(base, e -> references.reference(t, e), baseAnswers), model, greedy,
                    v.name().modelName(spec.model()), set.train(), set.heldOut(), probes,
                    model.tokenize(spec.eval().canary(), true, false), spec.eval(), serves);
        } catch (RuntimeException e) {
            Files.deleteIfExists(file);
            if (v != null) {
                registry.setResult(v.version(), new JsonObject(), "error");  // registered, never checked: it stays inactive
            }
            throw e;
        } finally {
            training = null;
        }
        p.message(report.passed() ? "info" : "warn", "Eval gate " + report.verdict() + ": " + report.reason());
        JsonObject metrics = result(p, report);
        metrics.remove("events");
        metrics.addProperty("job_seconds", (System.nanoTime() - t0) / 1e9);
        registry.setResult(v.version(), metrics, report.verdict());
        String name = v.name().modelName(spec.model());
        if (report.passed() && spec.eval().autoActivate()) {
            served.activate(v.version(), "job " + job.id() + " passed the eval gate");
            p.message("info", "Adapter " + name + " is serving.");
        } else {
            p.message("info", "Adapter " + name + " is registered; not activated (" + (report.passed() ? "auto_activate is off" : report.reason()) + ").");
        }
        jobs.finish(job.id(), JobStore.Status.SUCCEEDED, null, v.version(), result(p, report));
    }

    /**
     * Measures a checkpoint: the trained weights, or with {@code ema_decay} their average, which the checkpoint then
     * keeps; training goes on from the trained weights either way.
     */
    private static Checkpoints.Check measure(LoraTrainer t, Checkpoints checkpoints, WeightAverage average, int step) {
        if (average == null) {
            return checkpoints.measure(step);
        }
        float[] trained = t.snapshot();
        t.restore(average.weights());
        try {
            return checkpoints.measure(step);
        } finally {
            t.restore(trained);
        }
    }

    /**
     * The adapter so far (loaded into the engine for this, under no model name) continues each training answer
     * right after its last correction, and answers each replay prompt; each continuation becomes an example kept
     * under the KL term, its reference the base model on the same text. The base model's own answers keep the
     * adapter where the base model goes; these keep it where the adapter goes: a habit learned from a few steers
     * leads greedy decoding into states no recorded text visits (the correction said again after itself, a flipped
     * near-tie that runs into a loop), and there the base model's distribution is the one to stay at.
     */
    private List<LoraTrainer.Example> ownContinuations(LoraTrainer t, String jobId, List<TrainingSet.Item> train, List<int[]> replayPrompts,
                                                        boolean markRepeats) throws IOException {
        List<int[]> contexts = new ArrayList<>();
        List<Integer> answerStarts = new ArrayList<>();
        for (TrainingSet.Item i : train) {
            if (i.forks().isEmpty()) {
                continue;  // no correction, only a stop's token to avoid: what comes instead is the model's to say
            }
            int end = afterLastCorrection(i.example());
            if (model.isEndOfGeneration(i.example().tokens()[end - 1])) {
                continue;  // it learned to end there (a stop read as the end): nothing of the answer comes after it
            }
            contexts.add(Arrays.copyOf(i.example().tokens(), end));
            answerStarts.add(answerStart(i.example()));
        }
        Path file = registry.dir().resolve(".job-" + jobId + "-own.gguf");
        t.save(file);
        LoraAdapter adapter;
        var loading = engine.onDecodeThread(() -> LoraAdapter.load(model, file));
        try {
            adapter = loading.get(ServedAdapters.LOAD_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            loading.thenAccept(engine::retire);  // a load that still runs later is freed then
            throw new IllegalStateException("interrupted while loading the adapter so far");
        } catch (TimeoutException e) {
            loading.thenAccept(engine::retire);
            throw new IllegalStateException("the adapter so far was not loaded within " + ServedAdapters.LOAD_TIMEOUT.toSeconds()
                    + " s (the decode loop is busy or stuck, see /health)", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("the adapter so far could not be loaded for its own continuations: " + e, e);
        } finally {
            Files.deleteIfExists(file);
        }
        List<int[]> afterCorrections, replayAnswers;
        try {
            afterCorrections = greedy.answers(adapter, contexts, OWN_CONTINUATION_TOKENS);
            replayAnswers = greedy.answers(adapter, replayPrompts, OWN_REPLAY_TOKENS);
        } finally {
            engine.retire(adapter);
        }
        List<LoraTrainer.Example> out = new ArrayList<>();
        for (int i = 0; i < contexts.size(); i++) {
            LoraTrainer.Example e = ownExample(contexts.get(i), answerStarts.get(i), afterCorrections.get(i), markRepeats);
            if (e != null) {
                out.add(e);
            }
        }
        for (int i = 0; i < replayPrompts.size(); i++) {
            int[] prompt = replayPrompts.get(i);
            LoraTrainer.Example e = ownExample(prompt, prompt.length, replayAnswers.get(i), markRepeats);
            if (e != null) {
                out.add(e);
            }
        }
        return out;
    }

    /**
     * The adapter's own text after {@code context} as an example: kept under the KL term, and with
     * {@code markRepeats} its first repetition of the answer made unlikely and the rest left out ({@link Repeats});
     * null for an empty text.
     */
    static LoraTrainer.Example ownExample(int[] context, int answerStart, int[] own, boolean markRepeats) {
        if (own.length == 0) {
            return null;
        }
        int[] tokens = TrainingSet.concat(context, own);
        return new LoraTrainer.Example(tokens, Repeats.ownTextRoles(tokens, answerStart, context.length, markRepeats), -1, new int[0]);
    }

    /** What the first event says of checkpointing in runs: at most one run per adapted block (the trainer's rule). */
    private static String checkpointingRuns(int runs) {
        return runs >= 2 ? " Activation checkpointing in " + runs + " runs of blocks (and of the attention's activations)."
                : " One adapted block: no activation checkpointing to do (the attention's activations are computed again).";
    }

    /** An example's prompt: its tokens before the answer (the first one with a role). */
    static int[] prompt(LoraTrainer.Example e) {
        return Arrays.copyOf(e.tokens(), answerStart(e));
    }

    /** Where an example's answer begins: its first token that is not the prompt's. */
    static int answerStart(LoraTrainer.Example e) {
        for (int i = 0; i < e.roles().length; i++) {
            if (e.roles()[i] != LoraTrainer.NONE) {
                return i;
            }
        }
        return e.roles().length;
    }

    /** The length of an example's tokens up to and including its last learned (correction) token. */
    static int afterLastCorrection(LoraTrainer.Example e) {
        for (int i = e.roles().length - 1; i >= 0; i--) {
            if (e.roles()[i] == LoraTrainer.LEARN) {
                return i + 1;
            }
        }
        return e.tokens().length;
    }

    /**
     * Of the accepted answers (newest first), the first {@code max} whose prompt is at most {@link #ACCEPTED_PROMPT_TOKENS}
     * long and which have an answer: a long conversation would cost a training step of its own for a 16-token answer.
     */
    static List<Accepted> acceptedForReplay(List<Accepted> newestFirst, int max) {
        return newestFirst.stream()
                .filter(a -> a.promptTokens().length <= ACCEPTED_PROMPT_TOKENS && a.outputTokens().length > 0)
                .limit(Math.max(0, max))
                .toList();
    }

    /** Longest prompt of an accepted answer the replay set takes. */
    static final int ACCEPTED_PROMPT_TOKENS = 384;

    /** Tokens the adapter writes after an answer's last correction: where a correction gets said again. */
    private static final int OWN_CONTINUATION_TOKENS = 32;
    /** Tokens of the adapter's own replay answers: longer than the base's, as its loops start after a sentence or two. */
    private static final int OWN_REPLAY_TOKENS = 48;

    /**
     * Tokens of each replay prompt's base answer kept: an answer's start is where a habit leaks into prompts it
     * is not about (an opening phrase, a self-introduction), and where the answer takes its course; more
     * prompts with short answers teach that better than a few long ones, for the same training time.
     */
    static final int REPLAY_TOKENS = 16;
    /** Tokens of each watch prompt's base answer generated: enough for its first 40 characters. */
    static final int WATCH_TOKENS = 24;
    /** How often per epoch the job measures its checkpoints ({@link Checkpoints}). */
    private static final int CHECKS_PER_EPOCH = 2;

    /** All of {@link Threads#idle} while the engine has nothing running or waiting, else {@link Threads#serving}. */
    int trainingThreads() {
        return threads.with(engine.load());
    }

    /** The engine's load changed (a request arrived, a generation ended): the running job's next graph follows it. */
    private void loadChanged() {
        LoraTrainer t = training;
        if (t != null) {
            t.threads(trainingThreads());  // writes a cell the trainer reads; harmless if it has just been closed
        }
        preparation.loadChanged();
    }

    /** The token a turn of this model ends with: end-of-turn where the vocabulary has one (ChatML's im_end), else EOS. */
    static int endOfTurn(LlamaModel model) {
        return model.info().eot() >= 0 ? model.info().eot() : model.info().eos();
    }

    private static String lossTerms(Hyperparameters h) {
        List<String> terms = new ArrayList<>();
        if (h.nllWeight() > 0) {
            terms.add(h.nllWeight() + " x cross-entropy on the corrections" + (h.stops() == Hyperparameters.Stops.END ? " (a stop's: the end of the answer)" : ""));
        }
        if (h.firstTokenWeight() > 0) {
            terms.add(h.firstTokenWeight() + " x cross-entropy on each correction's first token");
        }
        if (h.stops() == Hyperparameters.Stops.AVOID && h.unlikelihoodWeight() > 0) {
            terms.add(h.unlikelihoodWeight() + " x unlikelihood of what the model said where the person stopped it");
        }
        if (h.klWeight() > 0) {
            terms.add(h.klWeight() + " x KL to the base model on approved text and replay answers");
        }
        if (h.dpoWeight() > 0) {
            terms.add(h.dpoWeight() + " x span-DPO (beta " + h.beta() + ")");
        }
        if (h.guardWeight() > 0) {
            terms.add(h.guardWeight() + " x guard: the corrections' tokens kept below the approved token on the text after each correction");
        }
        if (h.klWeight() > 0 && h.onPolicy() > 0) {
            terms.add("the KL also on the adapter's own text in the last " + h.onPolicy() + " epoch(s)");
            if (h.unlikelihoodWeight() > 0) {
                terms.add(h.unlikelihoodWeight() + " x unlikelihood where that text starts repeating the answer");
            }
        }
        return String.join(" + ", terms);
    }

    /** Every token of the training answers' corrections: what the guard keeps below the approved text elsewhere. */
    static Set<Integer> correctionTokens(List<TrainingSet.Item> train) {
        Set<Integer> tokens = new TreeSet<>();
        for (TrainingSet.Item i : train) {
            for (int token : i.example().tokensOf(LoraTrainer.LEARN)) {
                tokens.add(token);
            }
        }
        return tokens;
    }

    /**
     * The ordinary prompts a scope weighs a request against: the job's replay prompts (answers the person let run among
     * them), every built-in replay prompt besides, and the watch prompts; not the probes, which the gate asks as served
     * and so must stay a test of the scope. More of them draw the line nearer the steered prompts: on two habit sets
     * (docs/training.md, twenty-fifth session) 2-4 of 18 unrelated prompts went to the adapter with the 32 replay
     * prompts and 0-2 with these 60.
     */
    static List<int[]> unsteeredPrompts(LlamaModel model, ChatTemplates templates, List<int[]> replayTokens) {
        List<int[]> out = new ArrayList<>(replayTokens);
        List<int[]> builtIn = new ArrayList<>(ReplayPrompts.render(model, templates, ReplayPrompts.REPLAY));
        builtIn.addAll(ReplayPrompts.render(model, templates, ReplayPrompts.WATCH));
        for (int[] q : builtIn) {
            if (out.stream().noneMatch(x -> Arrays.equals(x, q))) {
                out.add(q);
            }
        }
        return out;
    }

    /** The example's reference, with {@code guarded} guarded at its keep rows (none: no guard). */
    private static LoraTrainer.Reference reference(LoraTrainer t, LoraTrainer.Example e, Set<Integer> guarded) {
        LoraTrainer.Reference ref = t.reference(e);
        return guarded.isEmpty() ? ref : ref.guarding(e, guarded);
    }

    /** A prompt and the base model's answer, the answer kept under the KL term; null for an empty answer. */
    static LoraTrainer.Example replayExample(int[] prompt, int[] answer) {
        return ownExample(prompt, prompt.length, answer, false);
    }

    /** What the store keeps of a finished job: counters, loss curve, eval report, events. */
    private static JsonObject result(JobProgress p, EvalGate.Report report) {
        JsonObject o = p.snapshot();
        if (report != null) {
            o.add("eval", Json.tree(report));
        }
        JsonArray events = new JsonArray();
        p.events().forEach(events::add);
        o.add("events", events);
        return o;
    }

    @Override
    public void close() {
        open = false;
        synchronized (this) {
            notifyAll();
        }
        try {
            preparation.close(10_000);
            thread.join(60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
