package dev.steer.train;

import dev.steer.adapters.AdapterVersion;
import dev.steer.adapters.Scope;
import dev.steer.engine.Engine;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LayerProbe;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.steer.Accepted;
import dev.steer.steer.SteerStore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a default job would compute before its first step and in its gate, computed in the background while a person
 * steers, so that the job that follows starts training at once and its gate compares with what is kept. One thread,
 * {@code steer-prepare}, woken after each record is stored or a steer's continuation written:
 * <ol>
 *   <li>once per server: the base model's answers to the built-in prompts a default job asks {@link BaseAnswers} for
 *       (replay, probes, watch; ~7 s of a SmolLM2-135M job on 2 cores), through the engine with at most all but one
 *       of its slots, so a request that arrives meanwhile finds one free;</li>
 *   <li>each time: the base model's side ({@link References}: reference and first adapted block's input) of the
 *       built-in replay and probe examples (~3.5 s) and of each answer a person steered or let run, as a default job
 *       would read it (~13 s for 50 steers), by a trainer of the default shape that lives only for that pass. What no
 *       job reads any more is dropped first, and the pass stops when the rest would not fit. One example at a time,
 *       each started only on an idle engine (a request that arrives meanwhile lowers the trainer's threads from its
 *       next graph), and never beside a job's trainer ({@code trainerTurn}): a job that starts meanwhile takes the
 *       turn after the example in progress, and computes whatever is missing itself;</li>
 *   <li>then the vectors the job's scope routes by (~2.5 s of its gate) and the base model's greedy answers at each
 *       fork (~2.3 s), each started only on an idle engine while no job runs.</li>
 * </ol>
 * A job with other hyperparameters (another reading of stops, other blocks adapted) finds fewer examples ready and
 * computes the rest: what is kept is keyed by the example itself, never assumed.
 */
final class JobPreparation {
    private static final Logger LOG = LoggerFactory.getLogger(JobPreparation.class);
    /** How long a pass waits after a record before it starts (a stream that was steered ends soon after). */
    private static final long SETTLE_MILLIS = 300;
    /** How often a pass that waits for an idle engine looks again. */
    private static final long IDLE_POLL_MILLIS = 100;

    private final LlamaModel model;
    private final ChatTemplates templates;
    private final Engine engine;
    private final Greedy greedy;
    private final BaseAnswers baseAnswers;
    private final References references;
    private final SteerStore steers;
    private final ReentrantLock trainerTurn;
    private final IntSupplier threads;
    private final Object wake = new Object();
    private boolean wanted;  // guarded by wake
    private volatile boolean open = true;
    private volatile String modelId;
    private Thread thread;  // guarded by wake
    private List<LoraTrainer.Example> builtInExamples = List.of();  // the preparation thread's
    private volatile LoraTrainer trainer;  // a pass's, while it lives: its thread count follows the engine's load
    private final AtomicLong computed = new AtomicLong();

    /**
     * @param trainerTurn held while a trainer exists (a job's or a pass's): one at a time; a job that waits for it
     *                    makes a pass give way
     * @param threads     the CPU threads a trainer may use now
     */
    JobPreparation(LlamaModel model, ChatTemplates templates, Engine engine, Greedy greedy, BaseAnswers baseAnswers,
                   References references, SteerStore steers, ReentrantLock trainerTurn, IntSupplier threads) {
        this.model = model;
        this.templates = templates;
        this.engine = engine;
        this.greedy = greedy;
        this.baseAnswers = baseAnswers;
        this.references = references;
        this.steers = steers;
        this.trainerTurn = trainerTurn;
        this.threads = threads;
    }

    /** Something was recorded for {@code modelId} (or the server starts with records): a pass soon. */
    void wanted(String modelId) {
        synchronized (wake) {
            if (!open) {
                return;
            }
            this.modelId = modelId;
            wanted = true;
            wake.notifyAll();
            if (thread == null) {
                thread = Thread.ofPlatform().daemon().name("steer-prepare").start(this::loop);
            }
        }
    }

    private void loop() {
        boolean builtIns = false;
        while (open) {
            try {
                synchronized (wake) {
                    while (!wanted && open) {
                        wake.wait();
                    }
                    wanted = false;
                }
                Thread.sleep(SETTLE_MILLIS);
            } catch (InterruptedException e) {
                return;
            }
            try {
                if (!builtIns) {
                    builtIns = prepareBuiltIns();
                }
                if (builtIns) {
                    prepareAnswers();
                }
            } catch (RuntimeException e) {
                if (open) {  // the next record tries again; a job computes what is missing itself
                    LOG.info("could not prepare for a job (a job will compute it): {}", e.getMessage());
                }
            }
        }
    }

    /** The base model's answers to the built-in prompts and their examples' references; false: try again later. */
    private boolean prepareBuiltIns() {
        String base = AdapterVersion.pinnedName(modelId, null);
        int inFlight = Math.max(1, engine.config().parallel() - 1);
        BaseAnswers.Generator fewer = (m, prompts, n) -> greedy.answers(m, prompts, n, inFlight);
        List<String> replay = ReplayPrompts.REPLAY.subList(0, Math.min(Hyperparameters.DEFAULT_REPLAY, ReplayPrompts.REPLAY.size()));
        List<int[]> replayTokens = ReplayPrompts.render(model, templates, replay);
        List<int[]> probeTokens = ReplayPrompts.render(model, templates, ReplayPrompts.PROBES);
        List<int[]> replayAnswers = baseAnswers.answers(base, replayTokens, JobRunner.REPLAY_TOKENS, fewer);
        List<int[]> probeAnswers = baseAnswers.answers(base, probeTokens, EvalGate.PROBE_TOKENS, fewer);
        baseAnswers.answers(base, ReplayPrompts.render(model, templates, ReplayPrompts.WATCH), JobRunner.WATCH_TOKENS, fewer);
        List<LoraTrainer.Example> builtIn = new ArrayList<>();
        for (int i = 0; i < replayTokens.size(); i++) {
            builtIn.add(JobRunner.replayExample(replayTokens.get(i), replayAnswers.get(i)));
        }
        for (int i = 0; i < probeTokens.size(); i++) {
            builtIn.add(JobRunner.replayExample(probeTokens.get(i), probeAnswers.get(i)));
        }
        builtIn.removeIf(e -> e == null);  // an empty answer: no example
        builtInExamples = List.copyOf(builtIn);
        return compute(builtIn);
    }

    /**
     * What a default job would compute of the records stored now: the base model's side of each steered answer and of
     * the answers let run it replays; the vectors its scope routes by (every steered and unsteered prompt, and the
     * gate's probes, as {@link Scope#router} reads them: the engine's {@link dev.steer.llama.LayerProbe} keeps them);
     * and the base model's greedy answers at every fork, which the gate compares a held-out fork's adapter answer with.
     */
    private void prepareAnswers() {
        Hyperparameters h = Hyperparameters.defaults(Hyperparameters.Method.SFT);
        List<LoraTrainer.Example> examples = new ArrayList<>();
        TrainingSet all = TrainingSet.split(steers.list(new SteerStore.Filter(null, null, modelId, null, null, false)), 0, h.seed(),
                new TrainingSet.StopReading(h.stops(), JobRunner.endOfTurn(model)));
        all.train().forEach(i -> examples.add(i.example()));
        List<int[]> replayPrompts = new ArrayList<>();
        for (Accepted a : JobRunner.acceptedForReplay(steers.acceptedFromBase(modelId, h.replay()), h.replay() / 2)) {
            examples.add(JobRunner.replayExample(a.promptTokens(),
                    Arrays.copyOf(a.outputTokens(), Math.min(a.outputTokens().length, JobRunner.REPLAY_TOKENS))));
            replayPrompts.add(a.promptTokens());
        }
        int layers = model.info().layers(), first = JobRunner.firstAdapted(layers, h.adaptedLayers(layers));
        List<LoraTrainer.Example> wanted = new ArrayList<>(builtInExamples);
        examples.stream().filter(e -> e != null).forEach(wanted::add);
        references.retainOnly(first, wanted);  // what no job reads any more makes room
        if (!compute(examples)) {
            return;
        }
        if (first > 0 && !all.train().isEmpty()) {  // (with every block adapted a scope sums embeddings: nothing to keep)
            List<int[]> read = new ArrayList<>(all.train().stream().map(i -> JobRunner.prompt(i.example())).toList());
            read.addAll(JobRunner.unsteeredPrompts(model, templates, replayPrompts));
            read.addAll(ReplayPrompts.render(model, templates, ReplayPrompts.PROBES));
            // More than the probe keeps would push out what the last pass read (and what serving routed): left to the job.
            for (int[] prompt : read.size() <= LayerProbe.CACHED / 2 ? read : List.<int[]>of()) {
                if (!awaitIdleEngine()) {
                    return;
                }
                Scope.vectorOf(model, engine::layerProbe, first, prompt);
            }
        }
        List<int[]> forks = all.train().stream().flatMap(i -> i.forks().stream()).map(TrainingSet.Fork::context).toList();
        int inFlight = Math.max(1, engine.config().parallel() - 1);
        for (int i = 0; i < forks.size(); i += inFlight) {  // a few at a time, each time on an idle engine
            if (!awaitIdleEngine()) {
                return;
            }
            baseAnswers.answers(AdapterVersion.pinnedName(modelId, null), forks.subList(i, Math.min(forks.size(), i + inFlight)),
                    EvalGate.FORK_TOKENS, (m, prompts, n) -> greedy.answers(m, prompts, n, inFlight));
        }
        LOG.debug("the base model's side of {} examples, their scope's vectors and {} forks' answers are ready for a job", examples.size(), forks.size());
    }

    /**
     * Computes and keeps what is missing of {@code examples} (nulls skipped) with a default-shaped trainer, in order,
     * as long as they fit ({@link References#hasRoomFor}: past that a job computes the rest, rather than every pass
     * computing again what the last one made room for): false when the pass gave way (a job's turn, a close).
     */
    private boolean compute(List<LoraTrainer.Example> examples) {
        Hyperparameters h = Hyperparameters.defaults(Hyperparameters.Method.SFT);
        int layers = model.info().layers(), adapted = h.adaptedLayers(layers), first = JobRunner.firstAdapted(layers, adapted);
        List<LoraTrainer.Example> missing = examples.stream().filter(e -> e != null && !references.has(first, e)).toList();
        if (missing.isEmpty()) {
            return true;
        }
        if (!trainerTurn.tryLock()) {
            return false;  // a job runs: it computes what it needs, and keeps it
        }
        try (LoraTrainer t = LoraTrainer.create(model, h.targetModules(), h.loraRank(), h.loraAlpha(), adapted, h.seed(), threads.getAsInt())) {
            trainer = t;
            for (LoraTrainer.Example e : missing) {
                if (!references.hasRoomFor(e, model.info().embeddingSize())) {
                    return true;  // full: the rest is the job's to compute
                }
                if (!awaitIdleEngine()) {
                    return false;
                }
                t.threads(threads.getAsInt());
                references.reference(t, e);
                t.forgetKeptInputs();  // References holds it now; this trainer never trains
                computed.incrementAndGet();
            }
            return true;
        } finally {
            trainer = null;
            trainerTurn.unlock();
        }
    }

    /**
     * Waits until the engine generates nothing (a person waiting for an answer keeps every core); false when the pass
     * should give way instead: closed, or a job runs or waits for the trainer's turn.
     */
    private boolean awaitIdleEngine() {
        // a job waits for the turn, or has it
        while (open && !trainerTurn.hasQueuedThreads() && !(trainerTurn.isLocked() && !trainerTurn.isHeldByCurrentThread())) {
            if (engine.load() == 0) {
                return true;
            }
            try {
                Thread.sleep(IDLE_POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return false;
    }

    /**
     * A job ended: a pass soon, if the server prepares at all (a record stored while the job ran woke a pass that gave
     * way to the job, and nothing else would wake one until the next record).
     */
    void jobEnded() {
        String m = modelId;
        if (m != null) {
            wanted(m);
        }
    }

    /** How many examples' base-model side the preparation has computed since the server started (for tests). */
    long computed() {
        return computed.get();
    }

    /** The engine's load changed: a pass's trainer follows it from its next graph (a request gets its cores back). */
    void loadChanged() {
        LoraTrainer t = trainer;
        if (t != null) {
            t.threads(threads.getAsInt());  // writes a cell the trainer reads; harmless if it has just been closed
        }
    }

    /** Stops the pass (after the example in progress) and the thread; waits for it at most {@code millis}. */
    void close(long millis) throws InterruptedException {
        Thread t;
        synchronized (wake) {
            open = false;
            wake.notifyAll();
            t = thread;
        }
        if (t != null) {
            t.interrupt();  // a wait for the engine's answers ends; what it generated is not needed any more
            t.join(millis);
        }
    }
}
