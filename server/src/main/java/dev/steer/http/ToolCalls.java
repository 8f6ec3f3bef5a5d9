package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.GrammarLimits;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * Tool calling on chat completions: the request's {@code tools}, {@code tool_choice} and {@code parallel_tool_calls}
 * checked (the template renders them and llama.cpp's {@code common} builds the grammar that keeps a call's arguments
 * to its schema, as in llama-server), and an answer read back as OpenAI's {@code tool_calls}.
 */
final class ToolCalls {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    /** One call in a message: {@code arguments} is the JSON text the model wrote. */
    record Call(String id, String type, Function function) {}

    record Function(String name, String arguments) {}

    /**
     * A call in a streamed delta, as OpenAI sends it: the first names its place, id, type and function name (with the
     * arguments so far, often ""), the next ones carry only the place and a fragment of the arguments.
     */
    record CallDelta(int index, @OmitWhenNull String id, @OmitWhenNull String type, FunctionDelta function) {}

    record FunctionDelta(@OmitWhenNull String name, String arguments) {}

    /** An answer read back: its text (null when it is only calls) and its calls (null when none). */
    record Parsed(String content, @OmitWhenNull List<Call> calls) {
        boolean hasCalls() {
            return calls != null && !calls.isEmpty();
        }
    }

    private ToolCalls() {}

    /**
     * The tools a request offers, as the template takes them, or null when it offers none. A named function in
     * {@code tool_choice} offers that one tool and requires a call. Refuses (400) what OpenAI refuses: a tool that is
     * not a function with a valid name and an object schema, two tools of one name, a choice naming no offered tool,
     * a choice without tools.
     */
    static ChatTemplates.Tools read(RequestBody b) {
        JsonArray tools = b.array("tools");
        JsonElement choice = b.raw("tool_choice");
        if (tools == null || tools.isEmpty()) {
            if (choice != null && !(choice.isJsonPrimitive() && choice.getAsString().equals("none"))) {
                throw ApiError.invalid("tool_choice", "'tool_choice' needs 'tools'.");
            }
            return null;
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < tools.size(); i++) {
            names.add(checkTool(tools.get(i), "tools[" + i + "]", names));
        }
        // llama-server's default, not OpenAI's (true): a small model allowed several calls tends to repeat its call
        // until max_tokens (SmolLM2 does); a client that wants several asks for them.
        boolean parallel = b.bool("parallel_tool_calls", false);
        if (choice == null) {
            return new ChatTemplates.Tools(tools, "auto", parallel);
        }
        if (choice.isJsonPrimitive() && choice.getAsJsonPrimitive().isString()) {
            String c = choice.getAsString();
            if (!List.of("auto", "none", "required").contains(c)) {
                throw ApiError.invalid("tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}.");
            }
            return new ChatTemplates.Tools(tools, c, parallel);
        }
        JsonElement name = choice.isJsonObject() && choice.getAsJsonObject().get("function") instanceof JsonObject f ? f.get("name") : null;
        String named = name != null && name.isJsonPrimitive() && name.getAsJsonPrimitive().isString() ? name.getAsString() : null;
        int at = named == null ? -1 : names.indexOf(named);
        if (at < 0) {
            throw ApiError.invalid("tool_choice", named == null
                    ? "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}."
                    : "'tool_choice' names the function '" + named + "', which is not among 'tools'.");
        }
        JsonArray one = new JsonArray();
        one.add(tools.get(at));
        return new ChatTemplates.Tools(one, "required", false);
    }

    private static String checkTool(JsonElement t, String param, List<String> seen) {
        if (!t.isJsonObject() || !t.getAsJsonObject().has("type") || !t.getAsJsonObject().get("type").isJsonPrimitive()
                || !t.getAsJsonObject().get("type").getAsString().equals("function")) {
            throw ApiError.invalid(param, "Each tool must be {\"type\": \"function\", \"function\": {...}}.");
        }
        JsonElement f = t.getAsJsonObject().get("function");
        if (f == null || !f.isJsonObject()) {
            throw ApiError.invalid(param + ".function", "'" + param + ".function' must be an object.");
        }
        JsonObject fn = f.getAsJsonObject();
        JsonElement name = fn.get("name");
        if (name == null || !name.isJsonPrimitive() || !NAME.matcher(name.getAsString()).matches()) {
            throw ApiError.invalid(param + ".function.name", "A function name is 1 to 64 letters, digits, '_' or '-'.");
        }
        if (seen.contains(name.getAsString())) {
            throw ApiError.invalid(param + ".function.name", "Two tools are named '" + name.getAsString() + "'.");
        }
        JsonElement params = fn.get("parameters");
        if (params != null && !params.isJsonNull() && !params.isJsonObject()) {
            throw ApiError.invalid(param + ".function.parameters", "'parameters' must be a JSON Schema object.");
        }
        if (params != null && params.isJsonObject()) {
            try {
                GrammarLimits.checkJsonSchema(params);  // the limits response_format gets, before llama.cpp converts it
            } catch (GrammarLimits.Violation e) {
                throw new ApiError(400, "invalid_request_error", e.getMessage(), param + ".function.parameters", e.code());
            }
        }
        return name.getAsString();
    }

    /** The assistant message llama.cpp read from a finished answer, in our records; calls without an id get one. */
    static Parsed parse(ChatTemplates.Rendered rendered, String text) {
        return parse(rendered, text, false);
    }

    /**
     * The same for an answer still being written ({@code partial}): the text read so far and the calls begun, the
     * last one's arguments possibly cut short. Ids are left null here: a stream gives each call its id once.
     */
    static Parsed parse(ChatTemplates.Rendered rendered, String text, boolean partial) {
        if (nesting(text) > GrammarLimits.MAX_SCHEMA_DEPTH) {
            // llama.cpp's JSON parsing recurses per level: text nested this deep (a steer can write it where a schema
            // allows any object) is returned as it is rather than parsed
            return new Parsed(text, null);
        }
        JsonObject m = ChatTemplates.parse(rendered, text, partial);
        JsonElement content = m.get("content");
        String c = content == null || content.isJsonNull() ? null : content.getAsString();
        List<Call> calls = new ArrayList<>();
        if (m.has("tool_calls") && m.get("tool_calls").isJsonArray()) {
            for (JsonElement e : m.getAsJsonArray("tool_calls")) {
                JsonObject call = e.getAsJsonObject();
                JsonObject fn = call.getAsJsonObject("function");
                String id = call.has("id") && !call.get("id").isJsonNull() && !call.get("id").getAsString().isEmpty()
                        ? call.get("id").getAsString() : partial ? null : newId();
                calls.add(new Call(id, "function", new Function(string(fn, "name"), string(fn, "arguments"))));
            }
        }
        if (calls.isEmpty()) {
            return new Parsed(c == null ? (partial ? "" : text) : c, null);
        }
        return new Parsed(c == null || c.isEmpty() ? null : c, calls);
    }

    /**
     * How deep brackets nest in {@code s} ({@code [} and <code>{</code>, strings not told apart: an upper bound), without
     * recursion: what llama.cpp's JSON code would recurse through.
     */
    static int nesting(String s) {
        int depth = 0, max = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '[' || c == '{') {
                max = Math.max(max, ++depth);
            } else if ((c == ']' || c == '}') && depth > 0) {
                depth--;
            }
        }
        return max;
    }

    /**
     * The history's calls: each {@code tool_calls[].function.arguments} a string nested no deeper than a schema may be
     * (the template's C++ side parses and writes it again, recursing per level), 400 otherwise.
     */
    static void checkHistory(JsonArray messages) {
        for (int i = 0; i < messages.size(); i++) {
            JsonElement calls = messages.get(i).getAsJsonObject().get("tool_calls");
            if (calls == null || calls.isJsonNull()) {
                continue;
            }
            String param = "messages[" + i + "].tool_calls";
            if (!calls.isJsonArray()) {
                throw ApiError.invalid(param, "'" + param + "' must be an array of calls.");
            }
            for (JsonElement call : calls.getAsJsonArray()) {
                JsonElement args = call.isJsonObject() && call.getAsJsonObject().get("function") instanceof JsonObject f ? f.get("arguments") : null;
                if (args != null && args.isJsonPrimitive() && nesting(args.getAsString()) > GrammarLimits.MAX_SCHEMA_DEPTH) {
                    throw ApiError.invalid(param, "A call's 'arguments' nest deeper than " + GrammarLimits.MAX_SCHEMA_DEPTH + " levels.");
                }
            }
        }
    }

    /** A string member, "" when a partial answer has not written it yet. */
    private static String string(JsonObject o, String name) {
        JsonElement e = o == null ? null : o.get(name);
        return e == null || e.isJsonNull() ? "" : e.getAsString();
    }

    /** An id in OpenAI's style, for a call the model wrote without one. */
    static String newId() {
        return "call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
    }
}
