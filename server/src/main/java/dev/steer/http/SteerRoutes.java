package dev.steer.http;

import dev.steer.engine.Engine;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Exports;
import dev.steer.steer.Session;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerRecord;
import dev.steer.steer.SteerStore;
import dev.steer.steer.Steering;
import io.javalin.http.Context;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Steering a completion ({@link Steering} does it; these parse, call it, and answer), and the steer records: list,
 * get, delete, tag, exclude, export.
 */
final class SteerRoutes {
    /** Tags one record may carry, and characters per tag: labels to filter by, not a place to store data. */
    static final int MAX_TAGS = 64;
    static final int MAX_TAG_CHARS = 64;

    private final Engine engine;
    private final Sessions sessions;
    private final SteerStore store;
    private final Completions completions;
    private final Steering steering;

    /** @param steerTimeout how long a steer on a running completion waits for the decode thread to apply it */
    SteerRoutes(Engine engine, Sessions sessions, SteerStore store, Completions completions, Duration steerTimeout) {
        this.engine = engine;
        this.sessions = sessions;
        this.store = store;
        this.completions = completions;
        this.steering = new Steering(engine.model(), store, engine.contextPerSequence(), steerTimeout);
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
        if (b.has("at") == b.has("at_char")) {
            throw ApiError.invalid("at", "Give exactly one of 'at' (output tokens to keep) and 'at_char' (characters to keep).");
        }
        Integer at = position(b, "at");
        Integer atChar = position(b, "at_char");
        EventStream events = new EventStream();
        AtomicReference<Completions.Started> started = new AtomicReference<>();
        Steering.Outcome done;
        try {
            done = steering.steer(session, new Steering.Ask(at, atChar, text, maxTokens), events, events::steered, (next, recorder) -> {
                // The continuation generates with the adapter the completion started with, whatever serves by default now.
                Completions.Started g = completions.submit(session.pinnedModel, next, sel -> recorder);
                started.set(g);
                return g.generation();
            });
        } catch (Steering.Refused r) {
            throw error(r);
        }
        switch (done) {
            case Steering.Applied a -> Respond.json(ctx, 200, SteerJson.summary(a.record()));
            case Steering.Continued c -> {
                String served = started.get().selection().model();
                // Streamed in the shape of the API the answer came from: a response's continuation as Responses events.
                if (session.id.startsWith(Responses.ID_PREFIX)) {
                    ResponseEvents.stream(ctx, events, c.generation(), Responses.continued(session, served));
                } else {
                    // An answer with tools continues as one: its calls read back as tool_calls deltas.
                    Completions.respond(ctx, true, false, events, c.generation(),
                            new ResponseShape.Chat(session.id, served, model(), completions.toolFormat(session.requestJson)));
                }
            }
        }
    }

    /**
     * POST /v1/chat/completions/{id}/stop {"at"? | "at_char"?, "index"?}: stops the completion and records what followed
     * {@code at} (output tokens) or {@code at_char} (characters; the token holding that character is rejected too) as rejected.
     */
    void stop(Context ctx) throws InterruptedException {
        Session completion = session(ctx);
        RequestBody b = RequestBody.parse(ctx.body().isBlank() ? "{}" : ctx.body());
        Session session = choice(completion, b);
        if (b.has("at") && b.has("at_char")) {
            throw ApiError.invalid("at", "Give at most one of 'at' (output tokens to keep) and 'at_char' (characters to keep).");
        }
        Integer at = position(b, "at");
        Integer atChar = position(b, "at_char");
        try {
            Respond.json(ctx, 200, SteerJson.summary(steering.stop(session, at, atChar)));
        } catch (Steering.Refused r) {
            throw error(r);
        }
    }

    /** A cut position ({@code at}: output tokens, {@code at_char}: characters, to keep), or null when not given. */
    private static Integer position(RequestBody b, String name) {
        return b.has(name) ? (Integer) (int) b.integer(name, 0, 0, Integer.MAX_VALUE) : null;
    }

    /** A steer not done, as the API answers it. */
    private static ApiError error(Steering.Refused r) {
        return switch (r.code) {
            case INVALID -> ApiError.invalid(r.param, r.getMessage());
            case CONFLICT -> new ApiError(409, "invalid_request_error", r.getMessage(), null, "steer_conflict");
            case NOT_STARTED -> new ApiError(409, "invalid_request_error", r.getMessage(), null, "steer_not_started");
            case TIMEOUT -> new ApiError(503, "server_error", r.getMessage(), null, "steer_timeout");
            case PENDING -> new ApiError(503, "server_error", r.getMessage(), null, "steer_pending");
            case FAILED -> new ApiError(500, "server_error", r.getMessage(), null, "steer_failed");
            case UNAVAILABLE -> new ApiError(503, "server_error", r.getMessage(), null, "engine_unavailable");
        };
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
}
