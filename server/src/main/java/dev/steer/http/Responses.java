package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.json.Json;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Session;
import dev.steer.steer.Sessions;
import io.javalin.http.Context;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * POST /v1/responses (OpenAI's Responses API) as a translation onto chat completions: the input and
 * {@code previous_response_id} become chat messages, the parameters a chat completion body, which then takes the
 * one chat path (validation, template, grammar limits, steerable session, engine). The session is named by the
 * response id, so the steer routes steer a response as they steer a chat completion, and its steer records keep the
 * chat body (with {@code messages}) that the exports read. Tools are not supported yet (a 400, not ignored).
 */
final class Responses {
    static final String ID_PREFIX = "resp_";
    private static final Set<String> ROLES = Set.of("user", "assistant", "system", "developer");

    /**
     * The chat completion body a Responses request becomes: what the chat path reads, and what the session records
     * (steer records and exports read its {@code messages}). A field the request left out is left out here too. The
     * sampling fields mean the same here as in a chat completion (OpenAI's and our extensions): copied as given, and
     * checked by the chat path, so an error names them as the client wrote them.
     *
     * @param instructions       kept so that a follow-up can leave these instructions out (OpenAI does not carry them
     *                           over), and so that a steer's continuation can describe the response it continues
     * @param previousResponseId kept for the same description
     */
    record ChatBody(String model, List<Message> messages, @OmitWhenNull JsonElement temperature, @OmitWhenNull JsonElement topP,
                    @OmitWhenNull JsonElement seed, @OmitWhenNull JsonElement topK, @OmitWhenNull JsonElement minP,
                    @OmitWhenNull JsonElement presencePenalty, @OmitWhenNull JsonElement frequencyPenalty,
                    @OmitWhenNull JsonElement repeatPenalty, @OmitWhenNull JsonElement repeatLastN,
                    @OmitWhenNull JsonElement dryMultiplier, @OmitWhenNull JsonElement dryBase,
                    @OmitWhenNull JsonElement dryAllowedLength, @OmitWhenNull JsonElement dryPenaltyLastN,
                    @OmitWhenNull JsonElement drySequenceBreakers,
                    @OmitWhenNull JsonElement ignoreEos, @OmitWhenNull JsonElement stream,
                    @OmitWhenNull Integer maxCompletionTokens, @OmitWhenNull ResponseFormat responseFormat,
                    @OmitWhenNull String instructions, @OmitWhenNull String previousResponseId) {}

    /** A chat message: the Responses input is text only. */
    record Message(String role, String content) {}

    /** {@code text.format} as a chat completion's {@code response_format} (none for plain text). */
    record ResponseFormat(String type, @OmitWhenNull JsonSchemaFields jsonSchema) {}

    /**
     * The fields of a {@code json_schema} format that a chat completion reads, as the client gave them (checked by the
     * chat path; a JSON null stays null, a missing one is left out).
     */
    record JsonSchemaFields(@OmitWhenNull JsonElement name, @OmitWhenNull JsonElement description, @OmitWhenNull JsonElement strict,
                            @OmitWhenNull JsonElement schema) {
        static JsonSchemaFields of(JsonObject o) {
            return new JsonSchemaFields(o.get("name"), o.get("description"), o.get("strict"), o.get("schema"));
        }
    }

    /** {@code text.format} as a response shows it when the request's own is not at hand: its type and schema fields. */
    record TextFormat(String type, @OmitWhenNull JsonElement name, @OmitWhenNull JsonElement description,
                      @OmitWhenNull JsonElement strict, @OmitWhenNull JsonElement schema) {
        static final TextFormat TEXT = new TextFormat("text", null, null, null, null);
    }

    private final Completions completions;
    private final Sessions sessions;
    private final LlamaModel model;
    private final String baseModel;

    Responses(Completions completions, Sessions sessions, LlamaModel model, String baseModel) {
        this.completions = completions;
        this.sessions = sessions;
        this.model = model;
        this.baseModel = baseModel;
    }

    void create(Context ctx) throws InterruptedException {
        RequestBody b = RequestBody.parse(ctx.body());
        String modelName = b.string("model", baseModel);
        String instructions = b.string("instructions", null);
        String previous = b.string("previous_response_id", null);
        JsonArray tools = b.array("tools");
        if (tools != null && !tools.isEmpty()) {
            throw new ApiError(400, "invalid_request_error", "Tools are not supported on this server yet.", "tools", "unsupported_parameter");
        }
        Integer maxOutput = b.has("max_output_tokens") ? (int) b.integer("max_output_tokens", 0, 1, Integer.MAX_VALUE) : null;
        JsonElement format = format(b.nested("text"));

        List<Message> messages = new ArrayList<>();
        if (instructions != null) {
            messages.add(new Message("system", instructions));
        }
        if (previous != null) {
            messages.addAll(history(previous));
        }
        messages.addAll(input(b));

        ChatBody body = new ChatBody(modelName, messages, b.raw("temperature"), b.raw("top_p"), b.raw("seed"), b.raw("top_k"),
                b.raw("min_p"), b.raw("presence_penalty"), b.raw("frequency_penalty"), b.raw("repeat_penalty"), b.raw("repeat_last_n"),
                b.raw("dry_multiplier"), b.raw("dry_base"), b.raw("dry_allowed_length"), b.raw("dry_penalty_last_n"),
                b.raw("dry_sequence_breakers"), b.raw("ignore_eos"), b.raw("stream"), maxOutput, responseFormat(format), instructions, previous);
        JsonObject chat = Json.tree(body).getAsJsonObject();  // the chat path reads a request body as a tree
        CompletionOptions options = read(chat);

        String id = ID_PREFIX + hex();
        Completions.Chat started = completions.startChat(id, modelName, chat.getAsJsonArray("messages"), options, Json.write(body),
                b.bool("store", true));
        ResponseObjects shape = new ResponseObjects(id, "msg_" + hex(), started.started().selection().model(),
                System.currentTimeMillis() / 1000, instructions, maxOutput, previous, b.number("temperature", 1.0, 0, 2),
                b.number("top_p", 1.0, 0, 1), format);
        if (options.stream()) {
            ResponseEvents.stream(ctx, started.events(), started.started().generation(), shape);
        } else {
            ResponseEvents.whole(ctx, started.events(), shape);
        }
    }

    /**
     * The shape of a steered response's continuation: the same response id, a new message (a new answer, as a
     * steer after the end is), and the parameters its chat body recorded.
     */
    static ResponseObjects continued(Session session, String model) {
        JsonObject chat = JsonParser.parseString(session.requestJson).getAsJsonObject();
        TextFormat format = TextFormat.TEXT;
        if (chat.has("response_format")) {
            JsonObject rf = chat.getAsJsonObject("response_format");
            JsonSchemaFields js = JsonSchemaFields.of(rf.has("json_schema") ? rf.getAsJsonObject("json_schema") : new JsonObject());
            format = new TextFormat(rf.get("type").getAsString(), js.name(), js.description(), js.strict(), js.schema());
        }
        return new ResponseObjects(session.id, "msg_" + hex(), model, System.currentTimeMillis() / 1000,
                chat.has("instructions") ? chat.get("instructions").getAsString() : null,
                chat.has("max_completion_tokens") ? chat.get("max_completion_tokens").getAsInt() : null,
                chat.has("previous_response_id") ? chat.get("previous_response_id").getAsString() : null,
                chat.has("temperature") ? chat.get("temperature").getAsDouble() : 1.0,
                chat.has("top_p") ? chat.get("top_p").getAsDouble() : 1.0, Json.tree(format));
    }

    /** The chat options of the translated body; an error about a translated field names the field the client sent. */
    private static CompletionOptions read(JsonObject chat) {
        try {
            return CompletionOptions.read(RequestBody.of(chat), true);
        } catch (ApiError e) {
            if (e.param == null || !e.param.startsWith("response_format")) {
                throw e;
            }
            String param = e.param.replace("response_format.json_schema", "text.format.schema").replace("response_format", "text.format");
            String message = e.getMessage().replace("response_format.json_schema", "text.format.schema").replace("response_format", "text.format");
            throw new ApiError(e.status, e.type, message, param, e.code);
        }
    }

    /** {@code text.format}, checked: {@code {"type": "text" | "json_object" | "json_schema", ...}}. */
    private static JsonElement format(RequestBody text) {
        JsonObject f = text.object("format");
        if (f == null) {
            return Json.tree(TextFormat.TEXT);
        }
        JsonElement type = f.get("type");
        if (type == null || !type.isJsonPrimitive() || !type.getAsJsonPrimitive().isString()
                || !Set.of("text", "json_object", "json_schema").contains(type.getAsString())) {
            throw ApiError.invalid("text.format.type", "'text.format.type' must be 'text', 'json_object' or 'json_schema'.");
        }
        if (type.getAsString().equals("json_schema") && (!f.has("schema") || !f.get("schema").isJsonObject())) {
            throw ApiError.invalid("text.format.schema", "A 'json_schema' format needs a 'schema' object.");
        }
        return f;
    }

    /** {@code text.format} (checked by {@link #format}) as a chat completion's {@code response_format}, or null for plain text. */
    private static ResponseFormat responseFormat(JsonElement format) {
        JsonObject f = format.getAsJsonObject();
        String type = f.get("type").getAsString();
        return switch (type) {
            case "text" -> null;
            case "json_schema" -> new ResponseFormat(type, JsonSchemaFields.of(f));
            default -> new ResponseFormat(type, null);
        };
    }

    /**
     * The conversation before this request: the previous response's messages (without its instructions, which
     * OpenAI does not carry over) and its answer as it stands, steers included. Only a response within the session
     * TTL, and only once it has finished.
     */
    private List<Message> history(String previous) {
        Session s = previous.startsWith(ID_PREFIX) ? sessions.get(previous).orElse(null) : null;
        if (s == null) {
            throw new ApiError(400, "invalid_request_error", "Previous response with id '" + previous
                    + "' not found (unknown, or finished longer ago than this server keeps responses).", "previous_response_id",
                    "previous_response_not_found");
        }
        if (s.live() != null) {
            throw ApiError.invalid("previous_response_id", "The previous response '" + previous + "' is still in progress.");
        }
        // Its chat body, as written by create (a resp_ session has no other): every message a role and a text.
        JsonObject earlier = JsonParser.parseString(s.requestJson).getAsJsonObject();
        List<Message> messages = new ArrayList<>();
        for (JsonElement m : earlier.getAsJsonArray("messages")) {
            messages.add(new Message(m.getAsJsonObject().get("role").getAsString(), m.getAsJsonObject().get("content").getAsString()));
        }
        if (earlier.has("instructions")) {
            messages.remove(0);
        }
        messages.add(new Message("assistant", model.detokenize(s.output(), false, false)));
        return messages;
    }

    /** {@code input}: a string (one user message) or a list of message items; text content only. */
    private static List<Message> input(RequestBody b) {
        JsonElement in = b.raw("input");
        if (in != null && in.isJsonPrimitive() && in.getAsJsonPrimitive().isString()) {
            return List.of(new Message("user", in.getAsString()));
        }
        if (in == null || !in.isJsonArray() || in.getAsJsonArray().isEmpty()) {
            throw ApiError.invalid("input", "'input' must be a string or a non-empty array of messages.");
        }
        JsonArray items = in.getAsJsonArray();
        List<Message> out = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            String param = "input[" + i + "]";
            if (!items.get(i).isJsonObject()) {
                throw ApiError.invalid(param, "Each input item must be an object.");
            }
            JsonObject item = items.get(i).getAsJsonObject();
            String type = string(item, "type", param);
            if (type != null && !type.equals("message")) {
                throw new ApiError(400, "invalid_request_error", "Input items of type '" + type + "' are not supported; only messages "
                        + "(tools are not supported yet).", param + ".type", "unsupported_input");
            }
            String role = string(item, "role", param);
            if (role == null || !ROLES.contains(role)) {
                throw ApiError.invalid(param + ".role", "Each input message needs a 'role' of " + ROLES + ".");
            }
            out.add(new Message(role, content(item.get("content"), param + ".content")));
        }
        return out;
    }

    /** A message's content as text: a string, or a list of input_text / output_text parts (joined). */
    private static String content(JsonElement c, String param) {
        if (c != null && c.isJsonPrimitive() && c.getAsJsonPrimitive().isString()) {
            return c.getAsString();
        }
        if (c == null || !c.isJsonArray()) {
            throw ApiError.invalid(param, "'" + param + "' must be a string or an array of text parts.");
        }
        StringBuilder text = new StringBuilder();
        JsonArray parts = c.getAsJsonArray();
        for (int i = 0; i < parts.size(); i++) {
            String p = param + "[" + i + "]";
            if (!parts.get(i).isJsonObject()) {
                throw ApiError.invalid(p, "Each content part must be an object.");
            }
            JsonObject part = parts.get(i).getAsJsonObject();
            String type = string(part, "type", p);
            if (!"input_text".equals(type) && !"output_text".equals(type)) {
                throw new ApiError(400, "invalid_request_error", "Content parts of type '" + type + "' are not supported; only "
                        + "input_text and output_text.", p + ".type", "unsupported_content");
            }
            String t = string(part, "text", p);
            if (t == null) {
                throw ApiError.invalid(p + ".text", "A text part needs a 'text' string.");
            }
            text.append(t);
        }
        return text.toString();
    }

    private static String string(JsonObject o, String name, String param) {
        JsonElement v = o.get(name);
        if (v == null || v.isJsonNull()) {
            return null;
        }
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw ApiError.invalid(param + "." + name, "'" + param + "." + name + "' must be a string.");
        }
        return v.getAsString();
    }

    private static String hex() {
        return UUID.randomUUID().toString().replace("-", "");
    }
}
