package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import dev.steer.adapters.AdapterVersion;
import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.engine.Generation;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.QueueFullException;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.GrammarLimits;
import dev.steer.llama.LlamaSampler;
import dev.steer.steer.Session;
import dev.steer.steer.SessionRecorder;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerStore;
import io.javalin.http.Context;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.Function;

/** POST /v1/chat/completions and POST /v1/completions: validate, render the prompt, generate, respond. */
final class Completions {
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    private final Engine engine;
    private final ChatTemplates templates;
    private final ServedAdapters served;
    private final Sessions sessions;
    private final SteerStore store;

    /** A generation handed to the engine, and the model name (adapter) it runs with. */
    record Started(ServedAdapters.Selection selection, Generation generation) {}

    Completions(Engine engine, ChatTemplates templates, ServedAdapters served, Sessions sessions, SteerStore store) {
        this.engine = engine;
        this.templates = templates;
        this.served = served;
        this.sessions = sessions;
        this.store = store;
    }

    void chat(Context ctx) throws InterruptedException {
        RequestBody b = RequestBody.parse(ctx.body());
        String model = b.string("model", served.baseModel());
        JsonArray messages = b.array("messages");
        checkMessages(messages);  // before the options: a request's first error is reported, as it always was
        CompletionOptions options = CompletionOptions.read(b, true);
        ChatTemplates.Tools tools = ToolCalls.read(b);
        if (tools != null && options.grammarParam() != null && !tools.choice().equals("none")) {
            throw ApiError.invalid("tools", "'tools' cannot be combined with '" + options.grammarParam() + "': the tool calls have their own grammar.");
        }
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        ChatPrompt chat = chatRequest(messages, options, tools);
        GenerationRequest request = chat.request();
        String recorded = RecordedRequest.of(b);  // not the raw body: the session keeps it for the TTL
        boolean accepting = accepting(options, b.bool("store", true)) && tools == null;
        // n choices: n sessions on one queue of events. Choice 0's session is named by the completion id, choice i's
        // by choiceId (the steer routes find it from the id and the choice's "index").
        List<EventStream> events = EventStream.choices(options.n());
        List<Generation> generations = new ArrayList<>();
        List<Session> opened = new ArrayList<>();
        String selected = model;
        Chat first = null;
        try {
            for (int i = 0; i < options.n(); i++) {
                Chat c = startSession(choiceId(id, i), selected, CompletionOptions.forChoice(request, i), recorded, accepting, events.get(i));
                generations.add(c.started().generation());
                opened.add(c.session());
                if (i == 0) {
                    first = c;
                    selected = c.started().selection().pinned();  // every choice with the same adapter, even across a hot swap
                }
            }
        } catch (RuntimeException e) {
            generations.forEach(Generation::cancel);  // e.g. the queue filled up part way: no partial answer
            opened.forEach(sessions::discard);        // and nothing kept for the refused request
            throw e;
        }
        ResponseShape.Chat shape = new ResponseShape.Chat(id, first.started().selection().model(), engine.model(),
                tools == null ? null : chat.rendered());
        if (options.stream()) {
            Respond.stream(ctx, events.get(0), generations, shape, options.includeUsage());
        } else {
            Respond.whole(ctx, events.get(0), generations, shape);
        }
    }

    /** The session of choice {@code index} of completion {@code id}: the id itself for the first. */
    static String choiceId(String id, int index) {
        return index == 0 ? id : id + "-" + index;
    }

    /** A chat generation handed to the engine: its steerable session, the engine handle, and its events. */
    record Chat(Session session, Started started, EventStream events) {}

    /**
     * Validates the messages, renders them with the chat template and starts the generation as a steerable session
     * named {@code id}; {@code requestJson} is what the session (and its steer records) keep as the request: a chat
     * completion body, whose {@code messages} the exports read. The Responses API's way onto the chat path.
     */
    Chat startChat(String id, String model, JsonArray messages, CompletionOptions options, String requestJson, boolean store) {
        return startSession(id, model, chatRequest(messages, options, null).request(), requestJson, accepting(options, store),
                new EventStream());
    }

    /**
     * Whether an answer that finishes without a steer or stop is recorded as accepted (approved text for training,
     * {@link SteerStore#insertAccepted}): only a streamed one (a person could watch it and stop it), of one choice
     * (letting one of n alternatives run approves none of the others), whose tokens the model chose (no grammar; its
     * end not ignored), unless the client said {@code "store": false}.
     */
    static boolean accepting(CompletionOptions options, boolean store) {
        return store && options.stream() && options.n() == 1 && options.grammarParam() == null && !options.ignoreEos();
    }

    /**
     * How the answer to a recorded chat request reads its tool calls (its messages and tools rendered again, as when
     * it was answered), or null when it offered none: a steer's continuation is streamed in the same shape.
     */
    ChatTemplates.Rendered toolFormat(String requestJson) {
        RequestBody b = RequestBody.parse(requestJson);
        ChatTemplates.Tools tools = ToolCalls.read(b);
        return tools == null ? null : render(b.array("messages"), tools);
    }

    /** A chat rendered for the engine, and what the template said about it (how to read tool calls back). */
    record ChatPrompt(GenerationRequest request, ChatTemplates.Rendered rendered) {}

    /**
     * The engine request for chat {@code messages}: rendered with the chat template (with {@code tools}, null for
     * none: the template describes them and llama.cpp's grammar keeps calls to their schemas), tokenized, its grammar
     * checked.
     */
    private ChatPrompt chatRequest(JsonArray messages, CompletionOptions options, ChatTemplates.Tools tools) {
        checkMessages(messages);
        ChatTemplates.Rendered rendered = render(messages, tools);
        int[] prompt = engine.model().tokenize(rendered.prompt(), true, true);
        GenerationRequest request = options.toRequest(prompt, rendered.additionalStops(), engine);
        if (tools != null && !rendered.grammar().isEmpty()) {
            LlamaSampler.Params sampling = rendered.grammarLazy()
                    ? request.sampling().withLazyGrammar(rendered.grammar(), rendered.triggerPatterns(), rendered.triggerTokens())
                    : request.sampling().withGrammar(rendered.grammar(), rendered.generationPrompt());
            request = request.withSampling(sampling);
        }
        checkSampling(request, tools != null ? "tools" : options.grammarParam());
        return new ChatPrompt(request, rendered);
    }

    /** {@code messages} (checked) rendered with the chat template and {@code tools} (null: none). */
    private ChatTemplates.Rendered render(JsonArray messages, ChatTemplates.Tools tools) {
        // A trailing assistant message is continued (prefill), not answered.
        String lastRole = messages.get(messages.size() - 1).getAsJsonObject().get("role").getAsString();
        boolean prefill = lastRole.equals("assistant");
        try {
            return templates.render(new ChatTemplates.Request(messages, !prefill, prefill, null, null, null, tools));
        } catch (IllegalArgumentException e) {
            // llama.cpp's reasons: "invalid tools: ..." (a function's schema) or about the messages (or the template)
            throw ApiError.invalid(e.getMessage().startsWith("invalid tools") ? "tools" : "messages", e.getMessage());
        }
    }

    /**
     * Starts {@code request} as the steerable session {@code id}, its events going to {@code events}; {@code accepting}:
     * record its answer as accepted if it finishes unsteered ({@link #accepting}).
     */
    private Chat startSession(String id, String model, GenerationRequest request, String requestJson, boolean accepting,
                              EventStream events) {
        Session[] session = new Session[1];  // opened once the selection names the adapter, before the engine runs it
        Started started;
        try {
            started = submit(model, request, sel -> {
                session[0] = sessions.open(id, served.baseModel(), sel.pinned(), AdapterVersion.idOrNull(sel.version()), requestJson, request);
                session[0].starting();
                return new SessionRecorder(session[0], store, engine.model(), events, events::steered, accepting && store.keepsAccepted());
            });
        } catch (RuntimeException e) {
            if (session[0] != null) {
                sessions.discard(session[0]);  // e.g. the queue was full: nothing is kept for a refused request
            }
            throw e;
        }
        session[0].started(started.generation());
        return new Chat(session[0], started, events);
    }

    /** A non-empty list of messages, each with a role the templates know. */
    static void checkMessages(JsonArray messages) {
        if (messages == null || messages.isEmpty()) {
            throw ApiError.invalid("messages", "'messages' must be a non-empty array.");
        }
        for (int i = 0; i < messages.size(); i++) {
            JsonElement m = messages.get(i);
            if (!m.isJsonObject() || !m.getAsJsonObject().has("role") || !m.getAsJsonObject().get("role").isJsonPrimitive()
                    || !ROLES.contains(m.getAsJsonObject().get("role").getAsString())) {
                throw ApiError.invalid("messages[" + i + "]", "Each message needs a 'role' of " + ROLES + ".");
            }
        }
        ToolCalls.checkHistory(messages);
    }

    void text(Context ctx) throws InterruptedException {
        RequestBody b = RequestBody.parse(ctx.body());
        String model = b.string("model", served.baseModel());
        JsonElement p = b.raw("prompt");
        String prompt;
        if (p != null && p.isJsonPrimitive() && p.getAsJsonPrimitive().isString()) {
            prompt = p.getAsString();
        } else if (p != null && p.isJsonArray() && p.getAsJsonArray().size() == 1
                && p.getAsJsonArray().get(0).isJsonPrimitive() && p.getAsJsonArray().get(0).getAsJsonPrimitive().isString()) {
            prompt = p.getAsJsonArray().get(0).getAsString();
        } else {
            throw ApiError.invalid("prompt", "'prompt' must be a string (or an array holding one string).");
        }
        if (prompt.isEmpty()) {
            throw ApiError.invalid("prompt", "'prompt' must not be empty.");
        }
        CompletionOptions options = CompletionOptions.read(b, false);
        int[] tokens = engine.model().tokenize(prompt, true, true);
        String id = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        GenerationRequest request = options.toRequest(tokens, List.of(), engine);
        checkSampling(request, options.grammarParam());
        EventStream events = new EventStream();
        Started started = submit(model, request, sel -> events);
        respond(ctx, options.stream(), options.includeUsage(), events, started.generation(),
                new ResponseShape.Text(id, started.selection().model(), engine.model()));
    }

    /**
     * Parses the grammar here (with llama.cpp, after {@link CompletionOptions} checked it against the limits), so a bad
     * one is the client's 400 and not a failure inside the engine. {@code param}: the field it came from. A DRY penalty
     * the request names is prepared here too, on this thread: llama.cpp reads the whole vocabulary for its breakers, and
     * the native side keeps the prepared sampler, so the decode thread only copies it.
     */
    private void checkSampling(GenerationRequest request, String param) {
        boolean grammar = request.sampling().grammar() != null;
        LlamaSampler.Dry dry = request.sampling().dry();
        if (!grammar && (dry == null || !dry.on())) {
            return;
        }
        try (LlamaSampler ignored = LlamaSampler.create(engine.model(), request.sampling())) {
            // valid, and a DRY penalty prepared
        } catch (GrammarLimits.Violation e) {
            throw new ApiError(400, "invalid_request_error", e.getMessage(), param, e.code());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(grammar ? param : "dry_multiplier", e.getMessage());
        }
    }

    /**
     * Hands the request to the engine with the adapter {@code model} selects ("base", "base@v3", "base@base"; the plain
     * name routed by the prompt when the active version has a scope, {@link ServedAdapters}).
     * The listener is made once the selection is known (a session records which adapter it used).
     */
    Started submit(String model, GenerationRequest request, Function<ServedAdapters.Selection, GenerationListener> listener) {
        try {
            return served.submit(model, request.prompt(), sel -> new Started(sel,
                    engine.submit(request.withAdapter(sel.adapter()), listener.apply(sel))));
        } catch (ServedAdapters.UnknownModelException e) {
            throw new ApiError(404, "invalid_request_error", e.getMessage(), "model", "model_not_found");
        } catch (QueueFullException | Sessions.FullException e) {
            throw ApiError.busy(e.getMessage());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(null, e.getMessage());
        }
    }

    static void respond(Context ctx, boolean stream, boolean includeUsage, EventStream events, Generation generation,
                        ResponseShape shape) throws InterruptedException {
        if (stream) {
            Respond.stream(ctx, events, generation, shape, includeUsage);
        } else {
            Respond.whole(ctx, events, generation, shape);
        }
    }
}
