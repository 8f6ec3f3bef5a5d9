package dev.steer.http;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.engine.GenerationRequest;
import dev.steer.llama.GrammarLimits;
import dev.steer.llama.Grammars;
import dev.steer.llama.LlamaSampler;
import java.util.ArrayList;
import java.util.List;

/**
 * The request fields chat and text completions share (sampling, length, stops, log-probs, structured output),
 * read and validated once.
 *
 * @param maxTokens    0: until the per-request context is full
 * @param topLogprobs  -1: no log-probs
 * @param grammarParam the request field the grammar came from ({@code grammar} or {@code response_format.json_schema}),
 *                     for errors about it; null without a grammar
 * @param n            choices to generate from the prompt (chat completions), each its own sequence
 */
record CompletionOptions(LlamaSampler.Params sampling, int maxTokens, List<String> stop, int topLogprobs,
                         boolean ignoreEos, boolean stream, boolean includeUsage, String grammarParam, int n) {
    /**
     * Most choices one request may ask for: each takes a sequence (and a queue place while none is free), so a
     * request cannot fill the queue by itself (its default is 16).
     */
    static final int MAX_CHOICES = 8;

    static CompletionOptions read(RequestBody b, boolean chat) {
        int n = (int) b.integer("n", 1, 1, chat ? MAX_CHOICES : 1);
        long maxTokens = b.integer("max_completion_tokens", b.integer("max_tokens", 0, 1, Integer.MAX_VALUE), 1, Integer.MAX_VALUE);
        float temperature = (float) b.number("temperature", 1.0, 0.0, 2.0);
        float topP = (float) b.number("top_p", 1.0, 0.0, 1.0);
        if (topP == 0f) {
            topP = Float.MIN_NORMAL;  // top_p 0 means "only the most likely token" to OpenAI clients
        }
        int topK = (int) b.integer("top_k", 0, 0, Integer.MAX_VALUE);
        float minP = (float) b.number("min_p", 0.0, 0.0, 1.0);
        float presence = (float) b.number("presence_penalty", 0.0, -2.0, 2.0);
        float frequency = (float) b.number("frequency_penalty", 0.0, -2.0, 2.0);
        float repeat = (float) b.number("repeat_penalty", 1.0, 0.0, 10.0);
        if (repeat == 0f) {
            throw ApiError.invalid("repeat_penalty", "'repeat_penalty' must be greater than 0.");
        }
        int lastN = (int) b.integer("repeat_last_n", 64, -1, Integer.MAX_VALUE);
        long seed = b.integer("seed", -1, Long.MIN_VALUE, Long.MAX_VALUE);
        List<String> stop = b.strings("stop", 16);

        int topLogprobs;
        if (chat) {
            boolean logprobs = b.bool("logprobs", false);
            topLogprobs = (int) b.integer("top_logprobs", 0, 0, 20);
            if (b.has("top_logprobs") && !logprobs) {
                throw ApiError.invalid("top_logprobs", "'top_logprobs' requires 'logprobs': true.");
            }
            topLogprobs = logprobs ? topLogprobs : -1;
        } else {
            topLogprobs = (int) b.integer("logprobs", -1, 0, 5);
        }

        LlamaSampler.Params sampling = new LlamaSampler.Params(temperature, topK, topP, minP, lastN, repeat, frequency,
                presence, dry(b), seed < 0 ? -1 : seed & 0xFFFFFFFFL, null, List.of(), new int[0], null);
        Grammar grammar = grammar(b);
        if (grammar != null) {
            sampling = sampling.withGrammar(grammar.gbnf());
        }
        boolean stream = b.bool("stream", false);
        JsonObject streamOptions = b.object("stream_options");
        boolean includeUsage = false;
        if (streamOptions != null && streamOptions.has("include_usage")) {
            var v = streamOptions.get("include_usage");
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isBoolean()) {
                throw ApiError.invalid("stream_options.include_usage", "'include_usage' must be a boolean.");
            }
            includeUsage = v.getAsBoolean();
        }
        return new CompletionOptions(sampling, (int) maxTokens, stop, topLogprobs, b.bool("ignore_eos", false),
                stream, includeUsage, grammar == null ? null : grammar.param(), n);
    }

    /**
     * Choice {@code index}'s request: the first one's, with the seed moved on by the index (a seeded request then
     * gives n different choices, and the same n every time); unseeded choices each draw their own seed.
     */
    static GenerationRequest forChoice(GenerationRequest r, int index) {
        LlamaSampler.Params p = r.sampling();
        if (index == 0 || p.seed() < 0) {
            return r;
        }
        return r.withSampling(p.withSeed((p.seed() + index) & 0xFFFFFFFFL));
    }

    /**
     * llama-server's DRY fields (off unless {@code dry_multiplier} is above 0); null when the request names none, so
     * that the server's own choice for it stands ({@link Completions}: answers an adapter writes).
     */
    private static LlamaSampler.Dry dry(RequestBody b) {
        if (DRY_FIELDS.stream().noneMatch(b::has)) {
            return null;
        }
        LlamaSampler.Dry d = LlamaSampler.Dry.OFF;
        float multiplier = (float) b.number("dry_multiplier", d.multiplier(), 0.0, 100.0);
        float base = (float) b.number("dry_base", d.base(), 1.0, 100.0);
        int allowed = (int) b.integer("dry_allowed_length", d.allowedLength(), 0, Integer.MAX_VALUE);
        int lastN = (int) b.integer("dry_penalty_last_n", d.lastN(), 0, Integer.MAX_VALUE);
        List<String> breakers = d.breakers();
        if (b.has("dry_sequence_breakers")) {
            // Bounded: llama.cpp prepares each breaker by reading every token of the vocabulary (on Gemma 3's 262k, a
            // 40-byte breaker that many tokens end a prefix of took ~0.3 s), and a sampler is made on the decode thread.
            // 40 bytes is llama.cpp's own cut; a NUL would end the C string early.
            breakers = b.strings("dry_sequence_breakers", LlamaSampler.Dry.MAX_BREAKERS);
            if (breakers.isEmpty() || breakers.stream().anyMatch(x -> x.isEmpty() || x.indexOf('\0') >= 0
                    || x.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 40)) {
                throw ApiError.invalid("dry_sequence_breakers", "'dry_sequence_breakers' must be a non-empty array of at most "
                        + LlamaSampler.Dry.MAX_BREAKERS + " strings of 1 to 40 bytes (UTF-8), without NUL.");
            }
        }
        return new LlamaSampler.Dry(multiplier, base, allowed, lastN, breakers);
    }

    /** The request fields {@link #dry} reads. */
    static final List<String> DRY_FIELDS = List.of("dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n",
            "dry_sequence_breakers");

    private static final String SCHEMA_PARAM = "response_format.json_schema";

    /** A request's grammar and the field it came from. */
    private record Grammar(String gbnf, String param) {}

    /**
     * GBNF from {@code grammar} (our extension) or {@code response_format} (json_object / json_schema), and the field
     * it came from; or null. Grammars and schemas are untrusted: both are checked against {@link GrammarLimits} here,
     * before llama.cpp parses them (a 400 naming the limit otherwise).
     */
    private static Grammar grammar(RequestBody b) {
        String grammar = b.string("grammar", null);
        JsonObject format = b.object("response_format");
        String type = format == null ? "text" : stringField(format, "type", "response_format.type");
        if (type == null) {
            throw ApiError.invalid("response_format.type", "'response_format' needs a 'type'.");
        }
        if (!type.equals("text") && grammar != null) {
            throw ApiError.invalid("grammar", "Use either 'grammar' or a structured 'response_format', not both.");
        }
        JsonElement schema = switch (type) {
            case "text" -> null;
            case "json_object" -> JsonParser.parseString("{\"type\": \"object\"}");
            case "json_schema" -> {
                var js = format.get("json_schema");
                if (js == null || !js.isJsonObject() || !js.getAsJsonObject().has("schema")
                        || !js.getAsJsonObject().get("schema").isJsonObject()) {
                    throw ApiError.invalid(SCHEMA_PARAM, "'json_schema' must be an object with a 'schema' object.");
                }
                yield js.getAsJsonObject().get("schema");
            }
            default -> throw ApiError.invalid("response_format.type",
                    "'response_format.type' must be 'text', 'json_object' or 'json_schema'.");
        };
        if (schema == null) {
            if (grammar == null) {
                return null;
            }
            withinLimits(grammar, "grammar", "");
            return new Grammar(grammar, "grammar");
        }
        String gbnf;
        try {
            GrammarLimits.checkJsonSchema(schema);  // before the converter recurses through it
            gbnf = Grammars.fromJsonSchema(schema.toString());
        } catch (GrammarLimits.Violation e) {
            throw new ApiError(400, "invalid_request_error", e.getMessage(), SCHEMA_PARAM, e.code());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(SCHEMA_PARAM, e.getMessage());
        }
        withinLimits(gbnf, SCHEMA_PARAM, "The grammar generated from the JSON schema is refused: ");
        return new Grammar(gbnf, SCHEMA_PARAM);
    }

    private static void withinLimits(String gbnf, String param, String prefix) {
        try {
            GrammarLimits.check(gbnf);
        } catch (GrammarLimits.Violation e) {
            throw new ApiError(400, "invalid_request_error", prefix + e.getMessage(), param, e.code());
        }
    }

    private static String stringField(JsonObject o, String name, String param) {
        var v = o.get(name);
        if (v == null || v.isJsonNull()) {
            return null;
        }
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw ApiError.invalid(param, "'" + param + "' must be a string.");
        }
        return v.getAsString();
    }

    /** The engine request for a tokenized prompt, with extra stops (a chat template's end-of-turn markers). */
    GenerationRequest toRequest(int[] prompt, List<String> extraStops, Engine engine) {
        int room = engine.contextPerSequence() - prompt.length;
        if (room < 1) {
            throw ApiError.invalid("messages", "The prompt is " + prompt.length + " tokens; this server's context per request is "
                    + engine.contextPerSequence() + " tokens.");
        }
        List<String> stops = new ArrayList<>(stop);
        extraStops.stream().filter(s -> !stops.contains(s)).forEach(stops::add);
        return new GenerationRequest(prompt, sampling, maxTokens == 0 ? room : maxTokens, stops, topLogprobs, ignoreEos);
    }
}
