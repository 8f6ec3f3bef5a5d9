package dev.steer.steer;

import dev.steer.engine.EngineUnavailableException;
import dev.steer.engine.Generation;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.SteerEvent;
import dev.steer.engine.SteerFailedException;
import dev.steer.engine.SteerRefusedException;
import dev.steer.engine.SteerSurgery;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.Utf8Stream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * The one steer service: a steer on a live generation (applied in place by the engine), a steer on a finished answer
 * (continued by a new generation), and a rejection ({@code /stop}). One steer at a time per session
 * ({@link Session#steering}); the steer's checks are {@link SteerSurgery#check}'s, on whichever thread applies it; its
 * record is built here ({@link #steerRecord}, {@link #rejection}). Knows nothing of HTTP: it throws {@link Refused}
 * with a {@link Refused.Code}, which the routes turn into a status.
 */
public final class Steering {
    /** Longest correction accepted, in tokens: a steer is a short nudge, not a new answer. */
    public static final int MAX_CORRECTION_TOKENS = 256;
    /** How long a steer the decode thread took up just as the wait ran out may still take. */
    private static final long PENDING_GRACE_MILLIS = 5_000;

    /** A steer as asked: exactly one of {@code at} (output tokens to keep) and {@code atChar} (characters to keep). */
    public record Ask(Integer at, Integer atChar, String text, int maxTokens) {}

    /** Submits a continuation (a steer on a finished answer) with {@code listener}; the caller picks the adapter. */
    @FunctionalInterface
    public interface Launcher {
        Generation launch(GenerationRequest request, GenerationListener listener);
    }

    /** What a steer did. */
    public sealed interface Outcome permits Applied, Continued {}

    /** Applied to the running generation (its stream goes on); the record is on disk. */
    public record Applied(SteerRecord record) implements Outcome {}

    /** The answer had finished: a new generation continues it, with the record written once its fork is decoded. */
    public record Continued(Generation generation) implements Outcome {}

    /** A steer or rejection not done, and why. Nothing changed unless the code is PENDING or FAILED. */
    public static final class Refused extends RuntimeException {
        public enum Code {
            /** a field is wrong ({@link #param}) */
            INVALID,
            /** another steer on this completion is still being applied */
            CONFLICT,
            /** the completion has not produced its first token */
            NOT_STARTED,
            /** the decode thread did not take it up in time; withdrawn, nothing changed */
            TIMEOUT,
            /** taken up, or applied, but not done (or not stored) in time: it may still be */
            PENDING,
            /** taken up, and failed with its generation, or could not be stored */
            FAILED,
            /** the decode loop has stopped */
            UNAVAILABLE
        }

        public final Code code;
        /** the request field at fault, for INVALID */
        public final String param;

        Refused(Code code, String param, String message) {
            super(message);
            this.code = code;
            this.param = param;
        }
    }

    private final LlamaModel model;
    private final SteerStore store;
    private final int perSequence;
    private final Duration timeout;

    /**
     * @param perSequence  the positions one generation may use (the engine's context per request)
     * @param steerTimeout how long a steer waits for the decode thread to apply it, and for its record to be stored
     */
    public Steering(LlamaModel model, SteerStore store, int perSequence, Duration steerTimeout) {
        this.model = model;
        this.store = store;
        this.perSequence = perSequence;
        this.timeout = steerTimeout;
    }

    /**
     * Steers the session's answer: a running generation in place (answered once its record is stored), a finished
     * one by a continuation sent to {@code downstream} (with {@code onRecorded} told of the record before any
     * continuation token). The session's {@code steering} flag is held only until this returns (or, for a steer that
     * may still be applied, until it resolves): a continuation that streams can itself be steered.
     */
    public Outcome steer(Session session, Ask ask, GenerationListener downstream, Consumer<SteerRecord> onRecorded,
                         Launcher launcher) throws InterruptedException {
        if (!session.steering.compareAndSet(false, true)) {
            throw conflict();
        }
        boolean release = true;
        try {
            int[] out = session.output();
            String atParam = ask.at() != null ? "at" : "at_char";
            int at;
            String text = ask.text();
            if (ask.at() != null) {
                at = ask.at();
            } else {
                // Cut at a character: keep the whole tokens before it, and put the rest of the text up to it into the correction.
                int[] cut = tokenAtChar(out, ask.atChar());
                at = cut[0];
                text = textOf(out, ask.atChar(), cut[1]) + text;
            }
            int[] correction = model.tokenize(text, false, false);
            if (correction.length == 0 || correction.length > MAX_CORRECTION_TOKENS) {
                throw invalid("text", "The correction must be 1 to " + MAX_CORRECTION_TOKENS + " tokens, it is " + correction.length + ".");
            }
            Generation live = session.live();
            if (live != null) {
                CompletableFuture<SteerEvent> pending = live.steer(at, correction, ask.maxTokens());
                SteerEvent e;
                try {
                    e = applyLive(pending, session.id, atParam);
                } catch (Refused r) {
                    if (r.code == Refused.Code.PENDING) {
                        // Taken up but not done: it may still be applied. Only then may the next steer come.
                        release = false;
                        pending.whenComplete((x, y) -> session.steering.set(false));
                    }
                    throw r;
                }
                if (e != null) {
                    // Applied; its record goes to disk on the store's writer thread. Acknowledged only once it is there.
                    CompletableFuture<Void> stored = session.lastSteerStored();
                    try {
                        awaitStored(stored, session.id);
                    } catch (Refused r) {
                        if (r.code == Refused.Code.PENDING) {
                            release = false;
                            stored.whenComplete((x, y) -> session.steering.set(false));
                        }
                        throw r;
                    }
                    return new Applied(store.get(session.lastSteerId()).orElseThrow());
                }
                // It finished before the steer reached it: what it rejects is its whole output, not the snapshot.
                out = session.output();
            }
            return continueFinished(session, out, at, atParam, correction, ask.maxTokens(), downstream, onRecorded, launcher);
        } finally {
            if (release) {
                session.steering.set(false);
            }
        }
    }

    /**
     * Stops the session's generation, if it runs, and records what followed {@code at} (null: the whole output,
     * nothing rejected) as a rejection, on disk before this returns. The record holds everything the generation
     * produced: it is taken once the generation has ended (at most the steer timeout after the cancel).
     */
    public SteerRecord stop(Session session, Integer at, Integer atChar) throws InterruptedException {
        if (!session.steering.compareAndSet(false, true)) {
            throw conflict();
        }
        try {
            // A cut past what exists now is past anything the client has seen: refused before anything is stopped (the
            // output only grows until the cancel, so whatever passes here still lies within it afterwards).
            cutAt(session.output(), at, atChar);
            Generation live = session.live();
            if (live != null) {
                live.cancel();
                session.awaitEnd(timeout.toMillis());
            }
            int[] out = session.output();
            int a = cutAt(out, at, atChar);
            SteerRecord r = rejection(session, model, a, Arrays.copyOf(out, a), Arrays.copyOfRange(out, a, out.length),
                    System.currentTimeMillis());
            store.insert(r);
            return r;
        } finally {
            session.steering.set(false);
        }
    }

    /**
     * The steer applied to the running generation, or null if it finished meanwhile (then it is continued instead).
     * The wait is bounded: a steer the decode thread has not taken up in time is withdrawn (nothing changed); one it
     * took up just then gets a few more seconds, being applied, and otherwise PENDING: it may still be.
     */
    private SteerEvent applyLive(CompletableFuture<SteerEvent> pending, String sessionId, String atParam) throws InterruptedException {
        try {
            try {
                return pending.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                if (pending.cancel(false)) {
                    throw new Refused(Refused.Code.TIMEOUT, null, "The steer was not applied within " + timeout.toMillis()
                            + " ms (the decode loop is busy or stuck, see /health); it was withdrawn and nothing changed. Try again.");
                }
                // Taken up (or done) just now: a healthy loop applies it within a step or two.
                return pending.get(Math.min(timeout.toMillis(), PENDING_GRACE_MILLIS), TimeUnit.MILLISECONDS);
            }
        } catch (TimeoutException e) {
            throw new Refused(Refused.Code.PENDING, null, "The steer is being applied but did not complete in time; it may still be "
                    + "applied and recorded (see GET /v1/steers?session_id=" + sessionId + ").");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof SteerFailedException) {
                // Not a refusal: the steer was taken up and its generation failed (its stream got an error too).
                throw new Refused(Refused.Code.FAILED, null, cause.getMessage());
            }
            if (cause instanceof EngineUnavailableException) {
                throw new Refused(Refused.Code.UNAVAILABLE, null, cause.getMessage());
            }
            if (cause instanceof SteerRefusedException r) {
                return switch (r.reason()) {
                    case FINISHED -> null;
                    // Not "finished": continuing it would start a second generation beside the queued one.
                    case NOT_STARTED -> throw new Refused(Refused.Code.NOT_STARTED, null, r.getMessage());
                    case IN_FLIGHT -> throw new Refused(Refused.Code.CONFLICT, null, r.getMessage());
                    case BAD_AT -> throw invalid(atParam, r.getMessage());
                    case EMPTY, GRAMMAR, DOES_NOT_FIT -> throw invalid("text", r.getMessage());
                };
            }
            // The generation ended between the cut and the fork's decode (a cancel): nothing was recorded.
            throw new Refused(Refused.Code.CONFLICT, null, String.valueOf(cause.getMessage()));
        }
    }

    /**
     * Waits (at most the steer timeout) for an applied steer's record to be on disk. The wait is on the store, which
     * a large export can hold: the steer is applied and its stream holds its continuation until then, so a steer
     * not stored in time is PENDING (it may still be recorded), and one that failed is FAILED.
     */
    private void awaitStored(CompletableFuture<Void> stored, String sessionId) throws InterruptedException {
        try {
            stored.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new Refused(Refused.Code.PENDING, null, "The steer was applied but its record was not stored within "
                    + timeout.toMillis() + " ms (the steer store is busy); it may still be recorded (see GET /v1/steers?session_id="
                    + sessionId + ").");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            while (cause instanceof CompletionException && cause.getCause() != null) {
                cause = cause.getCause();
            }
            throw new Refused(Refused.Code.FAILED, null, "The steer could not be stored: " + cause.getMessage());
        }
    }

    private Outcome continueFinished(Session session, int[] out, int at, String atParam, int[] correction, int maxTokens,
                                     GenerationListener downstream, Consumer<SteerRecord> onRecorded, Launcher launcher) {
        GenerationRequest first = session.request;
        // The same check as on the decode thread, here on the HTTP thread: a 400 now, not an engine failure later.
        try (LlamaSampler checked = SteerSurgery.check(model, first.sampling(), out, out.length, first.prompt().length,
                perSequence, at, correction)) {
            // only the check was wanted: the continuation's own sampler replays the kept output and the correction
        } catch (SteerRefusedException r) {
            throw invalid(r.reason() == SteerRefusedException.Reason.BAD_AT ? atParam : "text", r.getMessage());
        }
        int[] accepted = Arrays.copyOf(out, at);
        int[] rejected = Arrays.copyOfRange(out, at, out.length);
        int[] prompt = concat(first.prompt(), accepted, correction);
        int budget = Math.min(perSequence - prompt.length, maxTokens > 0 ? maxTokens : first.maxTokens());
        GenerationRequest next = new GenerationRequest(prompt, first.sampling(), budget, first.stop(), first.topLogprobs(),
                first.ignoreEos(), first.prompt().length, new SteerEvent(at, accepted, rejected, correction, null), null);
        SessionRecorder recorder = new SessionRecorder(session, store, model, downstream, onRecorded, false);  // steered: not accepted
        session.starting();
        Generation g;
        try {
            g = launcher.launch(next, recorder);
        } catch (RuntimeException e) {
            session.notStarted(session.now());
            throw e;
        }
        session.started(g);
        return new Continued(g);
    }

    /** The record of an applied steer ({@code e} has its fork's log-probs), as {@link SessionRecorder} stores it. */
    static SteerRecord steerRecord(Session session, LlamaModel model, SteerEvent e, long now) {
        List<SteerRecord.TokenLogprob> fork = new ArrayList<>();
        for (int i = 0; i < e.forkTop().size(); i++) {
            fork.add(new SteerRecord.TokenLogprob(e.forkTop().tokens()[i], e.forkTop().logprobs()[i]));
        }
        return new SteerRecord(newId(), session.id, "steer", session.model, session.adapterVersion, session.requestJson,
                session.prompt(), e.at(), e.accepted(), e.rejected(), e.correction(),
                model.detokenize(e.correction(), false, false), model.detokenize(e.accepted(), false, false),
                model.detokenize(e.rejected(), false, false), fork, null, null, false, Set.of(), now, now);
    }

    /** A rejection: no correction, no fork log-probs; training and exports skip it. */
    static SteerRecord rejection(Session session, LlamaModel model, int at, int[] accepted, int[] rejected, long now) {
        return new SteerRecord(newId(), session.id, "rejection", session.model, session.adapterVersion, session.requestJson,
                session.prompt(), at, accepted, rejected, new int[0], "", model.detokenize(accepted, false, false),
                model.detokenize(rejected, false, false), null, null, null, false, Set.of(), now, now);
    }

    private static String newId() {
        return "steer-" + UUID.randomUUID().toString().replace("-", "");
    }

    private static Refused invalid(String param, String message) {
        return new Refused(Refused.Code.INVALID, param, message);
    }

    private static Refused conflict() {
        return new Refused(Refused.Code.CONFLICT, null, "Another steer on this completion is still being applied.");
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    /** Where a stop cuts {@code out}: after {@code at} tokens, or the whole tokens before {@code atChar}, or at its end. */
    private int cutAt(int[] out, Integer at, Integer atChar) {
        // A cut at a character keeps the whole tokens before it (as a steer's at_char does).
        int a = atChar != null ? tokenAtChar(out, atChar)[0] : at == null ? out.length : at;
        if (a < 0 || a > out.length) {
            throw invalid("at", "'at' must be between 0 and " + out.length + ", the output tokens.");
        }
        return a;
    }

    /** [tokens whose text lies wholly before atChar, length of their text]. */
    private int[] tokenAtChar(int[] out, int atChar) {
        Utf8Stream u = new Utf8Stream();
        int length = 0;
        for (int i = 0; i < out.length; i++) {
            int next = length + u.append(model.tokenBytes(out[i], false)).length();
            if (next > atChar) {
                return new int[] {i, length};
            }
            length = next;
        }
        if (atChar > length) {
            throw invalid("at_char", "The output has only " + length + " characters so far.");
        }
        return new int[] {out.length, length};
    }

    /** The output's text between character {@code from} (where the kept tokens end) and {@code to}. */
    private String textOf(int[] out, int to, int from) {
        if (to == from) {
            return "";
        }
        Utf8Stream u = new Utf8Stream();
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < out.length && s.length() < to; i++) {
            s.append(u.append(model.tokenBytes(out[i], false)));
        }
        return s.substring(from, to);
    }
}
