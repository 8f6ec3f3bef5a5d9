package dev.steer.steer;

import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.SteerEvent;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.llama.LlamaModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * Sits between the engine and a client's response: keeps the session's output current, and stores every steer
 * before passing it on. It runs on the decode thread, so a steer is on disk before the client sees a single token
 * of its continuation.
 */
public final class SessionRecorder implements GenerationListener {
    private final Session session;
    private final SteerStore store;
    private final LlamaModel model;
    private final GenerationListener downstream;
    private final Consumer<SteerRecord> onRecorded;
    private int endToken = -1;  // the end-of-generation token the model ended with, if it did

    /** @param onRecorded told of each stored steer, before any continuation token reaches {@code downstream} */
    public SessionRecorder(Session session, SteerStore store, LlamaModel model, GenerationListener downstream,
                           Consumer<SteerRecord> onRecorded) {
        this.session = session;
        this.store = store;
        this.model = model;
        this.downstream = downstream;
        this.onRecorded = onRecorded;
    }

    @Override
    public void onToken(TokenEvent e) {
        if (e.token() != TokenEvent.NO_TOKEN) {
            if (model.isEndOfGeneration(e.token())) {
                endToken = e.token();
            } else {
                session.generated(e.token());
            }
        }
        downstream.onToken(e);
    }

    @Override
    public void onSteer(SteerEvent e) {
        long now = System.currentTimeMillis();
        String id = "steer-" + UUID.randomUUID().toString().replace("-", "");
        closeContinuation(session.continuation());
        endToken = -1;
        List<SteerRecord.TokenLogprob> fork = new ArrayList<>();
        for (int i = 0; i < e.forkTop().size(); i++) {
            fork.add(new SteerRecord.TokenLogprob(e.forkTop().tokens()[i], e.forkTop().logprobs()[i]));
        }
        SteerRecord r = new SteerRecord(id, session.id, "steer", session.model, session.adapterVersion, session.requestJson,
                session.prompt(), e.at(), e.accepted(), e.rejected(), e.correction(),
                model.detokenize(e.correction(), false, false), model.detokenize(e.accepted(), false, false),
                model.detokenize(e.rejected(), false, false), fork, null, null, false, Set.of(), now, now);
        store.insert(r);  // durable before anyone hears of the steer
        session.steered(e.at(), e.correction(), id);
        onRecorded.accept(r);
        downstream.onSteer(e);
    }

    @Override
    public void onFinish(FinishReason reason, Usage usage) {
        // A continuation the model ended itself keeps its end token: training then learns where the answer ends.
        int[] c = session.continuation();
        if (endToken >= 0) {
            c = java.util.Arrays.copyOf(c, c.length + 1);
            c[c.length - 1] = endToken;
        }
        closeContinuation(c);
        session.finished(session.now());
        downstream.onFinish(reason, usage);
    }

    @Override
    public void onError(RuntimeException error) {
        session.finished(session.now());
        downstream.onError(error);
    }

    /** The last steer's continuation is complete (a new steer or the end): store what was generated after it. */
    private void closeContinuation(int[] tokens) {
        String last = session.lastSteerId();
        if (last != null) {
            store.setContinuation(last, tokens, model.detokenize(tokens, false, false));
        }
    }
}
