package dev.steer.steer;

import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationOutput;
import dev.steer.engine.SteerEvent;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.llama.LlamaModel;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sits between the engine and a client's response: gives the session its generation's output (the engine's own
 * buffer, {@link #onSubmitted}), and stores every steer before its client hears of it. It runs on the decode thread,
 * which must never wait on the store (its lock can be held for long by an HTTP request), so the writes go to the
 * store's writer thread ({@link SteerStore#writer}), and what the client would hear after a write (the steer chunk,
 * the continuation, the end) is held here until that write is on disk. The decode thread goes on generating
 * meanwhile; the client sees nothing the store has not got.
 */
public final class SessionRecorder implements GenerationListener {
    private static final Logger LOG = LoggerFactory.getLogger(SessionRecorder.class);
    private final Session session;
    private final SteerStore store;
    private final LlamaModel model;
    private final GenerationListener downstream;
    private final Consumer<SteerRecord> onRecorded;
    /** record the answer as accepted if it finishes by itself with no steer or stop ({@link SteerStore#insertAccepted}) */
    private final boolean accepting;
    private GenerationOutput output = GenerationOutput.of();  // this generation's, from onSubmitted
    private int endToken = -1;  // the end-of-generation token the model ended with, if it did (not in the output)

    // Held briefly (queue adds, never I/O) by the decode thread and by the writer thread as a write completes.
    private final Object order = new Object();
    /** the last write handed over: downstream hears nothing more until it is done */
    private CompletableFuture<Void> pending = CompletableFuture.completedFuture(null);
    private final ArrayDeque<Runnable> held = new ArrayDeque<>();
    /** a write that failed: the generation fails (its client was told), nothing more is passed on */
    private RuntimeException failed;

    /**
     * @param onRecorded told of each stored steer, before any continuation token reaches {@code downstream}
     * @param accepting  record the answer as accepted when it finishes by itself, unsteered
     */
    public SessionRecorder(Session session, SteerStore store, LlamaModel model, GenerationListener downstream,
                           Consumer<SteerRecord> onRecorded, boolean accepting) {
        this.session = session;
        this.store = store;
        this.model = model;
        this.downstream = downstream;
        this.onRecorded = onRecorded;
        this.accepting = accepting;
    }

    /** On the submitting thread, before the generation is queued: the session reads this generation's output. */
    @Override
    public void onSubmitted(GenerationOutput generationOutput) {
        output = generationOutput;  // the decode thread sees it: the submit hands the job over under a lock
        session.adopt(generationOutput);
    }

    @Override
    public void onToken(TokenEvent e) {
        throwIfFailed();
        // The engine ends the answer at an end-of-generation token and leaves it out of the output (unless the request
        // ignores it: then it is output like any token); the record of the last steer's continuation keeps it.
        if (e.token() != TokenEvent.NO_TOKEN && model.isEndOfGeneration(e.token()) && !session.request.ignoreEos()) {
            endToken = e.token();
        }
        deliver(() -> downstream.onToken(e));
    }

    @Override
    public void onSteer(SteerEvent e) {
        throwIfFailed();
        String previous = session.lastSteerId();
        // What the previous steer's continuation was up to this steer, rejected tokens included (docs/architecture.md,
        // sharp edge 9): taken from the output before the cut, accepted + rejected.
        int[] continuation = session.continuation(e.before());
        endToken = -1;
        SteerRecord r = Steering.steerRecord(session, model, e, System.currentTimeMillis());
        String id = r.id();
        String continuationText = previous == null ? null : model.detokenize(continuation, false, false);
        // One write, one transaction: the previous steer's continuation ends here and this steer is stored, or neither
        // (a kill between two commits left the previous record's continuation cut back for a steer never stored).
        CompletableFuture<Void> stored = write(() -> store.insertAfter(previous, continuation, continuationText, r));
        session.steered(e.at(), e.correction(), id, stored);
        deliver(() -> {
            onRecorded.accept(r);
            downstream.onSteer(e);
        });
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {
        // A continuation the model ended itself keeps its end token: training then learns where the answer ends.
        int[] c = session.continuation(output.tokens());
        if (endToken >= 0) {
            c = Arrays.copyOf(c, c.length + 1);
            c[c.length - 1] = endToken;
        }
        String last = session.lastSteerId();
        if (last != null) {
            int[] tokens = c;
            String text = model.detokenize(tokens, false, false);
            write(() -> store.setContinuation(last, tokens, text));
        } else if (accepting && reason != FinishReason.CANCELLED && c.length > 0 && store.writer().pending() < SteerStore.ACCEPTED_BACKLOG) {
            // Nobody is told of this write, so nothing waits for it; the writer runs writes in order, so a steer of
            // this answer after its end (which deletes the row) comes after it.
            Accepted a = new Accepted(session.id, session.model, session.adapterVersion, session.prompt(), c, System.currentTimeMillis());
            store.writer().submit(() -> store.insertAccepted(a)).exceptionally(e -> {
                LOG.warn("could not record accepted answer {}: {}", a.sessionId(), e.getMessage());
                return null;
            });
        }
        session.finished(session.now());
        deliver(() -> downstream.onFinish(reason, usage));
    }

    @Override
    public void onError(RuntimeException error) {
        session.finished(session.now());
        deliver(() -> downstream.onError(error));  // unless a failed write told the client already
    }

    /**
     * Hands a write to the store's writer; what is passed on from now is held until it is done. Returns a future
     * that completes once it is done and what it held back has been passed on (so a steer's client hears of it on
     * its stream before the steer's own answer), exceptionally if it failed.
     */
    private CompletableFuture<Void> write(Runnable w) {
        CompletableFuture<Void> done = store.writer().submit(w);
        synchronized (order) {
            pending = done;
        }
        return done.whenComplete((ok, error) -> written(done, error));
    }

    /** On the writer thread (or here, if it was quick): pass on what waited for this write, or fail. */
    private void written(CompletableFuture<Void> done, Throwable error) {
        synchronized (order) {
            if (failed != null) {
                return;
            }
            if (error != null) {
                failed = new IllegalStateException("the steer could not be stored: " + error.getMessage(), error);
                held.clear();
                downstream.onError(failed);
                return;
            }
            if (done == pending) {  // writes complete in the order handed over: all before it are done too
                while (!held.isEmpty()) {
                    held.poll().run();
                }
            }
        }
    }

    private void deliver(Runnable event) {
        synchronized (order) {
            if (failed != null) {
                return;
            }
            if (held.isEmpty() && pending.isDone() && !pending.isCompletedExceptionally()) {
                event.run();
            } else {
                held.add(event);
            }
        }
    }

    /** After a failed write the generation must end: throwing here makes the engine fail it and free its sequence. */
    private void throwIfFailed() {
        synchronized (order) {
            if (failed != null) {
                throw failed;
            }
        }
    }
}
