package dev.steer.http;

import dev.steer.engine.Engine;
import dev.steer.engine.EngineUnavailableException;
import dev.steer.engine.Generation;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.NotStartedException;
import dev.steer.engine.SteerEvent;
import dev.steer.engine.SteerFailedException;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.Utf8Stream;
import dev.steer.steer.Exports;
import dev.steer.steer.Session;
import dev.steer.steer.SessionRecorder;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerRecord;
import dev.steer.steer.SteerStore;
import io.javalin.http.Context;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Steering a completion, and the steer records: list, get, delete, tag, exclude, export. */
final class SteerRoutes {
    /** Longest correction accepted, in tokens: a steer is a short nudge, not a new answer. */
    static final int MAX_CORRECTION_TOKENS = 256;
    /** Tags one record may carry, and characters per tag: labels to filter by, not a place to store data. */
    static final int MAX_TAGS = 64;
    static final int MAX_TAG_CHARS = 64;

    private final Engine engine;
    private final Sessions sessions;
    private final SteerStore store;
    private final Completions completions;
    private final Duration steerTimeout;

    /** @param steerTimeout how long a steer on a running completion waits for the decode thread to apply it */
    SteerRoutes(Engine engine, Sessions sessions, SteerStore store, Completions completions, Duration steerTimeout) {
        this.engine = engine;
        this.sessions = sessions;
        this.store = store;
        this.completions = completions;
        this.steerTimeout = steerTimeout;
    }

    private LlamaModel model() {
        return engine.model();
    }

    private Session session(Context ctx) {
        String id = ctx.pathParam("id");
        return sessions.get(id).orElseThrow(() -> new ApiError(404, "invalid_request_error",
                "No steerable completion '" + id + "': unknown, or finished too long ago.", "id", "session_not_found"));
    }

    /** The session of choice {@code "index"} (of a request with n > 1) of the completion; the completion's own without one. */
    private Session choice(Session completion, RequestBody b) {
        int index = (int) b.integer("index", 0, 0, CompletionOptions.MAX_CHOICES - 1);
        String id = Completions.choiceId(completion.id, index);
        return sessions.get(id).orElseThrow(() -> new ApiError(404, "invalid_request_error",
                "Completion '" + completion.id + "' has no choice " + index + ".", "index", "session_not_found"));
    }

    /**
     * POST /v1/chat/completions/{id}/steer {"at" | "at_char", "text", "max_tokens"?}. A running generation is steered
     * in place (its stream continues, with a steer chunk) and this answers with the stored record; a finished one is
     * continued by a new generation that this response streams.
     */
    void steer(Context ctx) throws Exception {
        Session completion = session(ctx);  // an unknown id is a 404 whatever the body
        RequestBody b = RequestBody.parse(ctx.body());
        Session session = choice(completion, b);
        String text = b.string("text", null);
        if (text == null || text.isEmpty()) {
            throw ApiError.invalid("text", "'text', the correction, must be a non-empty string.");
        }
        int maxTokens = (int) b.integer("max_tokens", 0, 1, Integer.MAX_VALUE);
        if (!session.steering.compareAndSet(false, true)) {
            throw conflict();
        }
        boolean release = true;
        try {
            int[] out = session.output();
            int at;
            if (b.has("at") == b.has("at_char")) {
                throw ApiError.invalid("at", "Give exactly one of 'at' (output tokens to keep) and 'at_char' (characters to keep).");
            } else if (b.has("at")) {
                at = (int) b.integer("at", 0, 0, Integer.MAX_VALUE);
            } else {
                // Cut at a character: keep the whole tokens before it, and put the rest of the text up to it into the correction.
                int atChar = (int) b.integer("at_char", 0, 0, Integer.MAX_VALUE);
                int[] cut = tokenAtChar(out, atChar);
                at = cut[0];
                text = textOf(out, at, atChar, cut[1]) + text;
            }
            if (at > out.length) {
                throw ApiError.invalid(b.has("at") ? "at" : "at_char", "The completion has only " + out.length
                        + " output tokens so far; 'at' must be between 0 and " + out.length + ".");
            }
            int[] correction = model().tokenize(text, false, false);
            if (correction.length == 0 || correction.length > MAX_CORRECTION_TOKENS) {
                throw ApiError.invalid("text", "The correction must be 1 to " + MAX_CORRECTION_TOKENS + " tokens, it is " + correction.length + ".");
            }
            Generation live = session.live();
            if (live != null) {
                CompletableFuture<SteerEvent> pending = live.steer(at, correction, maxTokens);
                SteerEvent e;
                try {
                    e = applyLive(pending, session.id);
                } catch (ApiError stillPending) {
                    if ("steer_pending".equals(stillPending.code)) {
                        // Taken up but not done: it may still be applied. Only then may the next steer come.
                        release = false;
                        pending.whenComplete((r, x) -> session.steering.set(false));
                    }
                    throw stillPending;
                }
                if (e != null) {
                    // Applied; its record goes to disk on the store's writer thread. Acknowledged only once it is there.
                    CompletableFuture<Void> stored = session.lastSteerStored();
                    try {
                        awaitStored(stored, session.id);
                    } catch (ApiError notYet) {
                        if ("steer_pending".equals(notYet.code)) {
                            release = false;
                            stored.whenComplete((r, x) -> session.steering.set(false));
                        }
                        throw notYet;
                    }
                    Respond.json(ctx, 200, SteerJson.summary(store.get(session.lastSteerId()).orElseThrow()));
                    return;
                }
            }
            continueFinished(ctx, session, out, at, correction, maxTokens);
        } finally {
            if (release) {
                session.steering.set(false);
            }
        }
    }

    /**
     * The steer applied to the running generation, or null if it finished meanwhile (then it is continued instead).
     * The wait is bounded: a steer the decode thread has not taken up in time is withdrawn (503, nothing changed);
     * one it took up just then gets a few more seconds, being applied, and otherwise a 503 that says it may still be.
     */
    private SteerEvent applyLive(CompletableFuture<SteerEvent> pending, String sessionId) throws InterruptedException {
        try {
            try {
                return pending.get(steerTimeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                if (pending.cancel(false)) {
                    throw new ApiError(503, "server_error", "The steer was not applied within " + steerTimeout.toMillis()
                            + " ms (the decode loop is busy or stuck, see /health); it was withdrawn and nothing changed. Try again.",
                            null, "steer_timeout");
                }
                // Taken up (or done) just now: a healthy loop applies it within a step or two.
                return pending.get(Math.min(steerTimeout.toMillis(), PENDING_GRACE_MILLIS), TimeUnit.MILLISECONDS);
            }
        } catch (TimeoutException e) {
            throw new ApiError(503, "server_error", "The steer is being applied but did not complete in time; it may still be "
                    + "applied and recorded (see GET /v1/steers?session_id=" + sessionId + ").", null, "steer_pending");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof SteerFailedException || cause instanceof EngineUnavailableException) {
                // Not a refusal: the steer was taken up and its generation failed (its stream got an error too).
                throw new ApiError(cause instanceof SteerFailedException ? 500 : 503, "server_error", cause.getMessage(), null,
                        cause instanceof SteerFailedException ? "steer_failed" : "engine_unavailable");
            }
            if (cause instanceof IllegalArgumentException) {
                throw ApiError.invalid(cause.getMessage().contains("grammar") ? "text" : "at", cause.getMessage());
            }
            if (cause instanceof NotStartedException) {
                // Not "finished": continuing it would start a second generation beside the queued one.
                throw new ApiError(409, "invalid_request_error", cause.getMessage(), null, "steer_not_started");
            }
            if (cause.getMessage() != null && cause.getMessage().contains("finished")) {
                return null;
            }
            throw new ApiError(409, "invalid_request_error", cause.getMessage(), null, "steer_conflict");
        }
    }

    /**
     * Waits (at most the steer timeout) for an applied steer's record to be on disk. The wait is on the store, which
     * a large export can hold: the steer is applied and its stream holds its continuation until then, so a steer
     * not stored in time is a 503 that says it may still be recorded, and one that failed is a 500.
     */
    private void awaitStored(CompletableFuture<Void> stored, String sessionId) throws InterruptedException {
        try {
            stored.get(steerTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new ApiError(503, "server_error", "The steer was applied but its record was not stored within "
                    + steerTimeout.toMillis() + " ms (the steer store is busy); it may still be recorded (see GET /v1/steers?session_id="
                    + sessionId + ").", null, "steer_pending");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            while (cause instanceof CompletionException && cause.getCause() != null) {
                cause = cause.getCause();
            }
            throw new ApiError(500, "server_error", "The steer could not be stored: " + cause.getMessage(), null, "steer_failed");
        }
    }

    /** How long a steer the decode thread took up just as the wait ran out may still take. */
    private static final long PENDING_GRACE_MILLIS = 5_000;

    private void continueFinished(Context ctx, Session session, int[] out, int at, int[] correction, int maxTokens)
            throws InterruptedException {
        GenerationRequest first = session.request;
        int[] accepted = Arrays.copyOf(out, at);
        int[] rejected = Arrays.copyOfRange(out, at, out.length);
        // The grammar must accept the correction where the answer stands (a 400 here, not an engine failure later).
        try (LlamaSampler probe = LlamaSampler.create(model(), first.sampling())) {
            for (int t : accepted) {
                probe.accept(t);
            }
            for (int i = 0; i < correction.length; i++) {
                if (!probe.canAccept(correction[i])) {
                    throw ApiError.invalid("text", "the correction's token " + i + " is not allowed by the request's grammar at that point");
                }
                probe.accept(correction[i]);
            }
        }
        int[] prompt = concat(first.prompt(), accepted, correction);
        int room = engine.contextPerSequence() - prompt.length;
        if (room < 1) {
            throw ApiError.invalid("text", "the steered completion no longer fits in this server's context per request");
        }
        int budget = Math.min(room, maxTokens > 0 ? maxTokens : first.maxTokens());
        GenerationRequest next = new GenerationRequest(prompt, first.sampling(), budget, first.stop(), first.topLogprobs(),
                first.ignoreEos(), first.prompt().length, new SteerEvent(at, accepted, rejected, correction, null), null);
        EventStream events = new EventStream();
        // The continuation generates with the adapter the completion started with, whatever serves by default now.
        session.starting();
        Completions.Started g;
        try {
            g = completions.submit(session.pinnedModel, next, sel -> new SessionRecorder(session, store, model(), events, events::steered));
        } catch (RuntimeException e) {
            session.notStarted(session.now());
            throw e;
        }
        session.started(g.generation());
        // Streamed in the shape of the API the answer came from: a response's continuation as Responses events.
        if (session.id.startsWith(Responses.ID_PREFIX)) {
            ResponseEvents.stream(ctx, events, g.generation(), Responses.continued(session, g.selection().model()));
        } else {
            Completions.respond(ctx, true, false, events, g.generation(), new ResponseShape.Chat(session.id, g.selection().model(), model()));
        }
    }

    /** POST /v1/chat/completions/{id}/stop {"at"?}: stops the completion and records what followed {@code at} as rejected. */
    void stop(Context ctx) {
        Session completion = session(ctx);
        RequestBody b = RequestBody.parse(ctx.body().isBlank() ? "{}" : ctx.body());
        Session session = choice(completion, b);
        Generation live = session.live();
        if (live != null) {
            live.cancel();
        }
        int[] out = session.output();
        int at = (int) b.integer("at", out.length, 0, out.length);
        long now = System.currentTimeMillis();
        int[] accepted = Arrays.copyOf(out, at);
        int[] rejected = Arrays.copyOfRange(out, at, out.length);
        SteerRecord r = new SteerRecord("steer-" + UUID.randomUUID().toString().replace("-", ""), session.id, "rejection",
                session.model, session.adapterVersion, session.requestJson, session.prompt(), at, accepted, rejected, new int[0], "",
                model().detokenize(accepted, false, false), model().detokenize(rejected, false, false), null, null, null,
                false, Set.of(), now, now);
        store.insert(r);
        Respond.json(ctx, 200, SteerJson.summary(r));
    }

    void list(Context ctx) {
        Respond.json(ctx, 200, new SteerJson.Page("list", store.list(filter(ctx)).stream().map(SteerJson::summary).toList()));
    }

    void get(Context ctx) {
        Respond.json(ctx, 200, SteerJson.detail(record(ctx)));
    }

    void delete(Context ctx) {
        SteerRecord r = record(ctx);
        store.delete(r.id());
        Respond.json(ctx, 200, new SteerJson.Deleted(r.id(), "steer.deleted", true));
    }

    /** POST /v1/steers/{id}/tags {"tags": ["a", "b"]}: adds tags, up to {@link #MAX_TAGS} on the record. */
    void tag(Context ctx) {
        record(ctx);
        List<String> tags = RequestBody.parse(ctx.body()).strings("tags", MAX_TAGS);
        if (tags.isEmpty() || tags.stream().anyMatch(t -> t.isBlank() || t.length() > MAX_TAG_CHARS)) {
            throw ApiError.invalid("tags", "'tags' must hold 1 to " + MAX_TAGS + " non-empty tags of at most " + MAX_TAG_CHARS + " characters.");
        }
        // Counted against what the record holds (or many small requests add tags without end), under the store's
        // lock so that two requests at once cannot both pass the count.
        synchronized (store) {
            SteerRecord r = record(ctx);
            Set<String> all = new LinkedHashSet<>(r.tags());
            all.addAll(tags);
            if (all.size() > MAX_TAGS) {
                throw new ApiError(400, "invalid_request_error", "A steer may carry at most " + MAX_TAGS + " tags; it has "
                        + r.tags().size() + " and this would make " + all.size() + ".", "tags", "too_many_tags");
            }
            store.addTags(r.id(), all);
            Respond.json(ctx, 200, SteerJson.summary(store.get(r.id()).orElseThrow()));
        }
    }

    /** POST /v1/steers/{id}/exclude {"excluded": true|false}: keeps a steer out of (or back in) training. */
    void exclude(Context ctx) {
        SteerRecord r = record(ctx);
        store.setExcluded(r.id(), RequestBody.parse(ctx.body().isBlank() ? "{}" : ctx.body()).bool("excluded", true));
        Respond.json(ctx, 200, SteerJson.summary(store.get(r.id()).orElseThrow()));
    }

    /** GET /v1/steers/export?format=trl_dpo|trl_sft|openai_sft|openai_dpo (+ the list filters): JSON Lines. */
    void export(Context ctx) {
        String f = ctx.queryParam("format");
        Exports.Format format;
        try {
            format = Exports.Format.parse(f == null ? "" : f);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid("format", "'format' must be one of trl_dpo, trl_sft, openai_sft, openai_dpo.");
        }
        SteerStore.Filter base = filter(ctx);
        boolean withExcluded = "true".equals(ctx.queryParam("include_excluded"));
        SteerStore.Filter training = new SteerStore.Filter(base.sessionId(), base.tag(), base.model(), base.since(), base.until(), withExcluded);
        ctx.contentType("application/jsonl; charset=utf-8").result(Exports.jsonl(store.list(training), format, model()));
    }

    private SteerRecord record(Context ctx) {
        String id = ctx.pathParam("id");
        return store.get(id).orElseThrow(() -> new ApiError(404, "invalid_request_error", "No steer '" + id + "'.", "id", "steer_not_found"));
    }

    private static SteerStore.Filter filter(Context ctx) {
        return new SteerStore.Filter(ctx.queryParam("session_id"), ctx.queryParam("tag"), ctx.queryParam("model"),
                millis(ctx, "since"), millis(ctx, "until"), !"false".equals(ctx.queryParam("include_excluded")));
    }

    private static Long millis(Context ctx, String name) {
        String v = ctx.queryParam(name);
        if (v == null) {
            return null;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw ApiError.invalid(name, "'" + name + "' must be epoch milliseconds.");
        }
    }

    private static ApiError conflict() {
        return new ApiError(409, "invalid_request_error", "Another steer on this completion is still being applied.", null, "steer_conflict");
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    /** [tokens whose text lies wholly before atChar, length of their text]. */
    private int[] tokenAtChar(int[] out, int atChar) {
        Utf8Stream u = new Utf8Stream();
        int length = 0;
        for (int i = 0; i < out.length; i++) {
            int next = length + u.append(model().tokenBytes(out[i], false)).length();
            if (next > atChar) {
                return new int[] {i, length};
            }
            length = next;
        }
        if (atChar > length) {
            throw ApiError.invalid("at_char", "The output has only " + length + " characters so far.");
        }
        return new int[] {out.length, length};
    }

    /** The output's text between character {@code from} (where token {@code at} starts) and {@code to}. */
    private String textOf(int[] out, int at, int to, int from) {
        if (to == from) {
            return "";
        }
        Utf8Stream u = new Utf8Stream();
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < out.length && s.length() < to; i++) {
            s.append(u.append(model().tokenBytes(out[i], false)));
        }
        return s.substring(from, to);
    }
}
