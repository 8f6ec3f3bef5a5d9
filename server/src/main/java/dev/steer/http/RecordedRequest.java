package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.steer.json.Json;
import java.util.List;

/**
 * What a chat session keeps of its request, and what its steer records store: the fields that shaped the prompt
 * and the sampling, and nothing else. A client's unknown fields are ignored when serving (as OpenAI does), so they
 * are not kept either: a session lives for the TTL, and a request padded with megabytes of them must not hold those
 * megabytes (issue 16, item 5). What is kept is bounded by the prompt, which must fit the context.
 */
final class RecordedRequest {
    /** The top-level fields chat completions read ({@link CompletionOptions} and {@link Completions#chat}). */
    static final List<String> FIELDS = List.of("model", "messages", "max_tokens", "max_completion_tokens", "n",
            "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty",
            "repeat_last_n", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers",
            "seed", "stop", "logprobs", "top_logprobs", "grammar", "response_format", "stream", "stream_options", "ignore_eos",
            "tools", "tool_choice", "parallel_tool_calls");
    /** The message fields llama.cpp's chat templates read (common_chat_msgs_parse_oaicompat). */
    private static final List<String> MESSAGE_FIELDS = List.of("role", "content", "name", "tool_call_id", "reasoning_content", "tool_calls");

    private RecordedRequest() {}

    /** The request as JSON, known fields only; {@code b} has been validated. */
    static String of(RequestBody b) {
        JsonObject in = b.json();
        JsonObject out = new JsonObject();
        for (String f : FIELDS) {
            if (in.has(f)) {
                out.add(f, f.equals("messages") ? messages(in.getAsJsonArray(f)) : in.get(f));
            }
        }
        return Json.write(out);
    }

    private static JsonArray messages(JsonArray in) {
        JsonArray out = new JsonArray();
        for (JsonElement m : in) {
            JsonObject kept = keep(m.getAsJsonObject(), MESSAGE_FIELDS);
            if (kept.has("content") && kept.get("content").isJsonArray()) {
                kept.add("content", each(kept.getAsJsonArray("content"), List.of("type", "text")));
            }
            if (kept.has("tool_calls") && kept.get("tool_calls").isJsonArray()) {
                JsonArray calls = each(kept.getAsJsonArray("tool_calls"), List.of("id", "type", "function"));
                for (JsonElement c : calls) {
                    JsonObject call = c.getAsJsonObject();
                    if (call.has("function") && call.get("function").isJsonObject()) {
                        call.add("function", keep(call.getAsJsonObject("function"), List.of("name", "arguments")));
                    }
                }
                kept.add("tool_calls", calls);
            }
            out.add(kept);
        }
        return out;
    }

    /** Each object of the array with only {@code fields}; other elements as they are. */
    private static JsonArray each(JsonArray in, List<String> fields) {
        JsonArray out = new JsonArray();
        for (JsonElement e : in) {
            out.add(e.isJsonObject() ? keep(e.getAsJsonObject(), fields) : e);
        }
        return out;
    }

    private static JsonObject keep(JsonObject in, List<String> fields) {
        JsonObject out = new JsonObject();
        for (String f : fields) {
            if (in.has(f)) {
                out.add(f, in.get(f));
            }
        }
        return out;
    }
}
