package dev.steer.steer;

import dev.steer.engine.Generation;
import dev.steer.engine.GenerationOutput;
import dev.steer.engine.GenerationRequest;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;

/**
 * A chat completion that can be steered: its prompt, its output so far (generated tokens and corrections, in order),
 * and the generation producing it while one runs. Steers on one session are serialized ({@link #steering}).
 *
 * <p>The output is not copied here: the session adopts the {@link GenerationOutput} of each generation it submits
 * (a continuation after a steer is a new generation, which starts with the answer so far), and reads it as the
 * engine writes it.
 */
public final class Session {
    public final String id;
    public final String model;
    /** the model name that selects exactly the adapter it generated with ("base@v2", "base@base"): its continuations use it */
    public final String pinnedModel;
    /** "v2", or null for the base model */
    public final String adapterVersion;
    public final String requestJson;
    /** the request as first submitted: its prompt ends where the output begins */
    public final GenerationRequest request;
    public final AtomicBoolean steering = new AtomicBoolean();
    private final LongSupplier clock;
    /** told when this session finishes or runs again, under this session's lock (null: held by no {@link Sessions}) */
    private final Sessions owner;

    /** the output of the session's latest generation; swapped only by a submit, which a running generation precludes */
    private volatile GenerationOutput out = GenerationOutput.of();
    private Generation live;
    private long finishedAt;
    private String lastSteerId;
    private CompletableFuture<Void> lastSteerStored = CompletableFuture.completedFuture(null);
    private int continuationFrom;

    Session(String id, String model, String pinnedModel, String adapterVersion, String requestJson, GenerationRequest request,
            LongSupplier clock, Sessions owner) {
        this.id = id;
        this.model = model;
        this.pinnedModel = pinnedModel;
        this.adapterVersion = adapterVersion;
        this.requestJson = requestJson;
        this.request = request;
        this.clock = clock;
        this.owner = owner;
    }

    /** Now, by the clock the session expires by. */
    public long now() {
        return clock.getAsLong();
    }

    public int[] prompt() {
        return request.prompt();
    }

    /** The output as it stands: a consistent copy, taken without waiting for the decode thread. */
    public int[] output() {
        return out.tokens();
    }

    /**
     * {@code output} is the output from now on: that of the generation being submitted for this session, which starts
     * with the answer it continues (so a reader never sees the answer shrink while it is resubmitted).
     */
    void adopt(GenerationOutput output) {
        out = output;
    }

    /** The running generation, or null once it has finished. */
    public synchronized Generation live() {
        return live;
    }

    /**
     * A generation is about to be submitted for this session: from now on it is not expired, until that generation
     * finishes ({@link #finished}) or fails to start ({@link #notStarted}). Call it before submitting: the
     * generation may finish before the submit returns.
     */
    public synchronized void starting() {
        live = null;
        finishedAt = 0;
        if (owner != null) {
            owner.live(this);
        }
    }

    /**
     * The generation submitted since {@link #starting}. One that already finished (it can, before the submit
     * returns) stays finished: marking it live again would keep the session from ever expiring.
     */
    public synchronized void started(Generation g) {
        if (finishedAt == 0) {
            live = g;
        }
    }

    /** The submit after {@link #starting} failed (e.g. a full queue): nothing runs; the session expires as usual. */
    public synchronized void notStarted(long now) {
        finished(now);
    }

    /** Waits until no generation runs for this session (at most {@code timeoutMillis}); true if none runs. */
    synchronized boolean awaitEnd(long timeoutMillis) throws InterruptedException {
        long until = System.nanoTime() + timeoutMillis * 1_000_000;
        for (long left = timeoutMillis; live != null && left > 0; left = (until - System.nanoTime()) / 1_000_000) {
            wait(left);
        }
        return live == null;
    }

    /**
     * A steer that keeps {@code at} output tokens and appends {@code correction} is recorded as {@code steerId} (the
     * engine made the cut in the output); its continuation starts after the correction. Returns the steer whose
     * continuation just ended, or null.
     * @param stored completes once the steer's record is on disk (and its client has been told of it)
     */
    synchronized String steered(int at, int[] correction, String steerId, CompletableFuture<Void> stored) {
        String previous = lastSteerId;
        lastSteerId = steerId;
        lastSteerStored = stored;
        continuationFrom = at + correction.length;
        return previous;
    }

    /** The tokens of {@code output} since the last steer: that steer's continuation in it. */
    synchronized int[] continuation(int[] output) {
        return Arrays.copyOfRange(output, Math.min(continuationFrom, output.length), output.length);
    }

    /** The id of the last steer stored for this session, or null. */
    public synchronized String lastSteerId() {
        return lastSteerId;
    }

    /**
     * Completes once the last steer's record is on disk, exceptionally if it could not be stored. A steer is
     * acknowledged only after it: the decode thread applies a steer at once but hands its record to the store's
     * writer thread.
     */
    public synchronized CompletableFuture<Void> lastSteerStored() {
        return lastSteerStored;
    }

    synchronized void finished(long now) {
        live = null;
        finishedAt = now;
        notifyAll();
        if (owner != null) {
            owner.finished(this, now);
        }
    }

    synchronized boolean expired(long now, long ttlMillis) {
        return live == null && finishedAt > 0 && now - finishedAt > ttlMillis;
    }
}
