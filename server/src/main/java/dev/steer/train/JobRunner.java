package dev.steer.train;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.ServedAdapters;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.steer.SteerRecord;
import dev.steer.steer.SteerStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

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
    private final JobStore jobs;
    private final SteerStore steers;
    private final AdapterRegistry registry;
    private final ServedAdapters served;
    private final LlamaModel model;
    private final String baseSha256;
    private final int threads;
    private final Map<String, JobProgress> progress = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile String running;
    private volatile boolean cancelRunning;
    private volatile boolean open = true;

    /** @param threads CPU threads for training, kept apart from serving's */
    public JobRunner(JobStore jobs, SteerStore steers, AdapterRegistry registry, ServedAdapters served, LlamaModel model,
                     String baseSha256, int threads) {
        this.jobs = jobs;
        this.steers = steers;
        this.registry = registry;
        this.served = served;
        this.model = model;
        this.baseSha256 = baseSha256;
        this.threads = threads;
        int lost = jobs.failInterrupted();
        if (lost > 0) {
            System.err.println("steer: " + lost + " job(s) were running when the server stopped; marked failed");
        }
        this.thread = new Thread(this::loop, "steer-training");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** Queues a job (durably) and returns it. */
    public JobStore.Job submit(JobSpec spec) {
        String id = "ftjob-" + UUID.randomUUID().toString().replace("-", "");
        JobStore.Job job = jobs.insert(id, spec);
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
            try {
                run(next, p);
            } catch (Cancelled e) {
                if (open) {
                    p.finish("warn", "Job cancelled after step " + e.step + ".");
                    jobs.finish(next.id(), JobStore.Status.CANCELLED, null, null, result(p, null));
                } else {
                    p.finish("error", "The server stopped during the job, after step " + e.step + ".");
                    jobs.finish(next.id(), JobStore.Status.FAILED, "the server stopped while the job was running", null, result(p, null));
                }
            } catch (RuntimeException | IOException e) {
                String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                p.finish("error", "Job failed: " + why);
                jobs.finish(next.id(), JobStore.Status.FAILED, why, null, result(p, null));
            } finally {
                running = null;
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

    private void run(JobStore.Job job, JobProgress p) throws IOException {
        JobSpec spec = job.spec();
        Hyperparameters h = spec.hyperparameters();
        JobSpec.Filters f = spec.filters();
        List<SteerRecord> records = steers.list(new SteerStore.Filter(f.sessionId(), f.tag(), spec.model(), f.since(), f.until(), false));
        TrainingSet set = TrainingSet.split(records, h.validationSplit(), h.seed());
        if (set.train().isEmpty()) {
            throw new IllegalArgumentException("no steers with a correction match the job's filters (" + records.size() + " records matched)");
        }
        int batch = Math.min(h.batchSize(), set.train().size());
        int perEpoch = (set.train().size() + batch - 1) / batch;
        int total = perEpoch * h.nEpochs();
        p.message("info", String.format("Training on %d steers (%d held out), %d steps of batch %d.",
                set.train().size(), set.heldOut().size(), total, batch));
        Path file = registry.dir().resolve(".job-" + job.id() + ".gguf");
        EvalGate.Report report;
        try (LoraTrainer t = LoraTrainer.create(model, h.targetModules(), h.loraRank(), h.loraAlpha(), h.seed(), threads)) {
            t.checkpointing(h.activationCheckpointing());
            LoraTrainer.Weights w = h.weights();
            Map<TrainingSet.Item, LoraTrainer.Reference> refs = new HashMap<>();
            for (TrainingSet.Item i : set.train()) {
                // The preference term compares against the base model; without it no reference is needed.
                refs.put(i, w.dpo() > 0 ? t.reference(i.example()) : new LoraTrainer.Reference(0, 0));
            }
            Random order = new Random(h.seed());
            long tokens = 0, t0 = System.nanoTime();
            int step = 0;
            for (int epoch = 1; epoch <= h.nEpochs(); epoch++) {
                for (List<TrainingSet.Item> b : TrainingSet.batches(set.train(), batch, order)) {
                    if (cancelRunning || !open) {
                        throw new Cancelled(step);
                    }
                    LoraTrainer.Optimizer o = h.optimizerAt(step, total);
                    LoraTrainer.StepResult r = t.step(b.stream().map(TrainingSet.Item::example).toList(),
                            b.stream().map(refs::get).toList(), w, o);
                    if (!Float.isFinite(r.loss()) || !Float.isFinite(r.gradNorm())) {
                        throw new IllegalStateException("the loss became " + r.loss() + " (gradient norm " + r.gradNorm()
                                + ") at step " + (step + 1) + "; lower the learning rate");
                    }
                    step++;
                    tokens += TrainingSet.tokens(b);
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    p.stepped(step, total, epoch, r.loss(), r.gradNorm(), o.learningRate(), tokens, tokens / seconds, seconds / step * (total - step));
                }
            }
            t.save(file);
            report = EvalGate.evaluate(t, set.heldOut(), model.tokenize(spec.eval().canary(), true, false), spec.eval());
        } catch (RuntimeException e) {
            Files.deleteIfExists(file);
            throw e;
        }
        p.message(report.passed() ? "info" : "warn", "Eval gate " + report.verdict() + ": " + report.reason());
        JsonObject metrics = result(p, report);
        metrics.remove("events");
        AdapterRegistry.Version v = registry.register(file, new AdapterRegistry.Lineage(spec.model(), baseSha256, job.id(),
                set.train().stream().map(TrainingSet.Item::steerId).toList(),
                set.heldOut().stream().map(TrainingSet.Item::steerId).toList(),
                Json.tree(h), metrics, report.verdict()));
        String name = spec.model() + "@" + v.id();
        if (report.passed() && spec.eval().autoActivate()) {
            served.activate(v.version(), "job " + job.id() + " passed the eval gate");
            p.finish("info", "Adapter " + name + " is serving.");
        } else {
            p.finish("info", "Adapter " + name + " is registered; not activated (" + (report.passed() ? "auto_activate is off" : report.reason()) + ").");
        }
        jobs.finish(job.id(), JobStore.Status.SUCCEEDED, null, v.version(), result(p, report));
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
            thread.join(60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
