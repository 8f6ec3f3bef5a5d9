package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.ChatTemplates;
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

    /** The same in a streamed delta, which names its place in the message. */
    record CallDelta(int index, String id, String type, Function function) {}

    /** An answer read back: its text (null when it is only calls) and its calls (null when none). */
    record Parsed(String content, @OmitWhenNull List<Call> calls) {
        boolean hasCalls() {
            return calls != null && !calls.isEmpty();
        }

        List<CallDelta> deltas() {
            List<CallDelta> out = new ArrayList<>();
            for (int i = 0; i < calls.size(); i++) {
                out.add(new CallDelta(i, calls.get(i).id(), calls.get(i).type(), calls.get(i).function()));
            }
            return out;
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
        boolean parallel = b.bool("parallel_tool_calls", true);
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
        String named = choice.isJsonObject() && choice.getAsJsonObject().has("function")
                && choice.getAsJsonObject().get("function").isJsonObject()
                && choice.getAsJsonObject().getAsJsonObject("function").has("name")
                ? choice.getAsJsonObject().getAsJsonObject("function").get("name").getAsString() : null;
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
        return name.getAsString();
    }

    /** The assistant message llama.cpp read from {@code text}, in our records; calls without an id get one. */
    static Parsed parse(ChatTemplates.Rendered rendered, String text) {
        JsonObject m = ChatTemplates.parse(rendered, text);
        JsonElement content = m.get("content");
        String c = content == null || content.isJsonNull() ? null : content.getAsString();
        List<Call> calls = new ArrayList<>();
        if (m.has("tool_calls") && m.get("tool_calls").isJsonArray()) {
            for (JsonElement e : m.getAsJsonArray("tool_calls")) {
                JsonObject call = e.getAsJsonObject();
                JsonObject fn = call.getAsJsonObject("function");
                String id = call.has("id") && !call.get("id").isJsonNull() && !call.get("id").getAsString().isEmpty()
                        ? call.get("id").getAsString() : "call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
                calls.add(new Call(id, "function", new Function(fn.get("name").getAsString(), fn.get("arguments").getAsString())));
            }
        }
        if (calls.isEmpty()) {
            return new Parsed(c == null ? text : c, null);
        }
        return new Parsed(c == null || c.isEmpty() ? null : c, calls);
    }
}
