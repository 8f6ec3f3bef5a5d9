package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Session;
import dev.steer.steer.Sessions;
import io.javalin.http.Context;
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
    /** Sampling fields that mean the same here as in a chat completion, OpenAI's and our extensions: copied as given. */
    private static final List<String> SAMPLING = List.of("temperature", "top_p", "seed", "top_k", "min_p", "presence_penalty",
            "frequency_penalty", "repeat_penalty", "repeat_last_n", "ignore_eos", "stream");

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

        JsonArray messages = new JsonArray();
        if (instructions != null) {
            messages.add(message("system", instructions));
        }
        if (previous != null) {
            messages.addAll(history(previous));
        }
        messages.addAll(input(b));

        // The chat completion this request is: what the chat path reads, and what the session records.
        JsonObject chat = new JsonObject();
        chat.addProperty("model", modelName);
        chat.add("messages", messages);
        for (String f : SAMPLING) {
            if (b.has(f)) {
                chat.add(f, b.raw(f));
            }
        }
        if (maxOutput != null) {
            chat.addProperty("max_completion_tokens", maxOutput);
        }
        JsonObject responseFormat = responseFormat(format);
        if (responseFormat != null) {
            chat.add("response_format", responseFormat);
        }
        // Kept so that a follow-up can leave these instructions out (OpenAI does not carry them over), and so that
        // a steer's continuation can describe the response it continues.
        if (instructions != null) {
            chat.addProperty("instructions", instructions);
        }
        if (previous != null) {
            chat.addProperty("previous_response_id", previous);
        }
        CompletionOptions options = read(chat);

        String id = ID_PREFIX + hex();
        Completions.Chat started = completions.startChat(id, modelName, messages, options, chat.toString());
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
        JsonObject rf = chat.has("response_format") ? chat.getAsJsonObject("response_format") : null;
        JsonObject format = new JsonObject();
        if (rf == null) {
            format.addProperty("type", "text");
        } else {
            format.add("type", rf.get("type"));
            if (rf.has("json_schema")) {
                rf.getAsJsonObject("json_schema").entrySet().forEach(e -> format.add(e.getKey(), e.getValue()));
            }
        }
        return new ResponseObjects(session.id, "msg_" + hex(), model, System.currentTimeMillis() / 1000,
                chat.has("instructions") ? chat.get("instructions").getAsString() : null,
                chat.has("max_completion_tokens") ? chat.get("max_completion_tokens").getAsInt() : null,
                chat.has("previous_response_id") ? chat.get("previous_response_id").getAsString() : null,
                chat.has("temperature") ? chat.get("temperature").getAsDouble() : 1.0,
                chat.has("top_p") ? chat.get("top_p").getAsDouble() : 1.0, format);
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
            return JsonParser.parseString("{\"type\": \"text\"}");
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

    /** {@code text.format} as a chat completion's {@code response_format}, or null for plain text. */
    private static JsonObject responseFormat(JsonElement format) {
        JsonObject f = format.getAsJsonObject();
        String type = f.get("type").getAsString();
        if (type.equals("text")) {
            return null;
        }
        JsonObject rf = new JsonObject();
        rf.addProperty("type", type);
        if (type.equals("json_schema")) {
            JsonObject js = new JsonObject();
            for (String k : List.of("name", "description", "strict", "schema")) {
                if (f.has(k)) {
                    js.add(k, f.get(k));
                }
            }
            rf.add("json_schema", js);
        }
        return rf;
    }

    /**
     * The conversation before this request: the previous response's messages (without its instructions, which
     * OpenAI does not carry over) and its answer as it stands, steers included. Only a response within the session
     * TTL, and only once it has finished.
     */
    private JsonArray history(String previous) {
        Session s = previous.startsWith(ID_PREFIX) ? sessions.get(previous).orElse(null) : null;
        if (s == null) {
            throw new ApiError(400, "invalid_request_error", "Previous response with id '" + previous
                    + "' not found (unknown, or finished longer ago than this server keeps responses).", "previous_response_id",
                    "previous_response_not_found");
        }
        if (s.live() != null) {
            throw ApiError.invalid("previous_response_id", "The previous response '" + previous + "' is still in progress.");
        }
        JsonObject earlier = JsonParser.parseString(s.requestJson).getAsJsonObject();
        JsonArray messages = earlier.getAsJsonArray("messages").deepCopy();
        if (earlier.has("instructions")) {
            messages.remove(0);
        }
        messages.add(message("assistant", model.detokenize(s.output(), false, false)));
        return messages;
    }

    /** {@code input}: a string (one user message) or a list of message items; text content only. */
    private static JsonArray input(RequestBody b) {
        JsonElement in = b.raw("input");
        JsonArray out = new JsonArray();
        if (in != null && in.isJsonPrimitive() && in.getAsJsonPrimitive().isString()) {
            out.add(message("user", in.getAsString()));
            return out;
        }
        if (in == null || !in.isJsonArray() || in.getAsJsonArray().isEmpty()) {
            throw ApiError.invalid("input", "'input' must be a string or a non-empty array of messages.");
        }
        JsonArray items = in.getAsJsonArray();
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
            out.add(message(role, content(item.get("content"), param + ".content")));
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

    private static JsonObject message(String role, String content) {
        JsonObject m = new JsonObject();
        m.addProperty("role", role);
        m.add("content", new JsonPrimitive(content));
        return m;
    }

    private static String hex() {
        return UUID.randomUUID().toString().replace("-", "");
    }
}
