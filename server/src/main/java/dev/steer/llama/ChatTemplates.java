package dev.steer.llama;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Renders OpenAI-style chat messages into a prompt with the model's own Jinja chat template (llama.cpp's
 * {@code common}, the same renderer llama-server uses). Thread-safe for rendering.
 */
public final class ChatTemplates extends NativeHandle {
    private static final Gson GSON = new Gson();

    /** What to render. {@code jsonSchema} / {@code grammar} / {@code tools} may be null. */
    public record Request(JsonArray messages, boolean addGenerationPrompt, boolean continueFinalMessage,
                          JsonElement jsonSchema, String grammar, JsonObject templateKwargs, Tools tools) {
        public Request(JsonArray messages, boolean addGenerationPrompt, boolean continueFinalMessage,
                       JsonElement jsonSchema, String grammar, JsonObject templateKwargs) {
            this(messages, addGenerationPrompt, continueFinalMessage, jsonSchema, grammar, templateKwargs, null);
        }

        public static Request of(JsonArray messages) {
            return new Request(messages, true, false, null, null, null, null);
        }
    }

    /**
     * The functions the model may call (OpenAI's {@code tools}), {@code choice} "auto", "none" or "required" (a named
     * function: the caller passes that one tool, "required"), and whether several calls may come in one answer.
     */
    public record Tools(JsonArray tools, String choice, boolean parallel) {}

    /**
     * A rendered prompt and what the template asks of generation: stops, a grammar for tools or schemas (lazy: it
     * applies once the output matches a trigger pattern or token), and how to read tool calls back ({@code format},
     * {@code parser}: see {@link #parse}). A template that cannot render tools gets them described in the system
     * message and writes calls as {@code <tool_call>{"name": ..., "arguments": ...}</tool_call>} (docs/tools.md).
     */
    public record Rendered(String prompt, String grammar, boolean grammarLazy, List<String> additionalStops,
                           List<String> preservedTokens, String generationPrompt, List<String> triggerPatterns,
                           int[] triggerTokens, int format, String parser) {}

    private final LlamaModel model;

    private ChatTemplates(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
    }

    /**
     * {@code overrideTemplate} (Jinja source) when it is not null; else the model's own template; else, for a GGUF
     * that lost its template, the one its architecture family was trained with (resources templates/); else ChatML.
     */
    public static ChatTemplates forModel(LlamaModel model, String overrideTemplate) {
        String template = overrideTemplate;
        if (template == null && model.info().chatTemplate() == null) {
            template = builtInTemplate(model.info().architecture());
        }
        byte[] t = template == null ? null : template.getBytes(StandardCharsets.UTF_8);
        return new ChatTemplates(model, nativeInit(model.handle(), t));
    }

    /** The template of an architecture family whose GGUFs sometimes ship without one, or null. */
    static String builtInTemplate(String architecture) {
        String name = architecture.startsWith("gemma") ? "gemma" : null;
        if (name == null) {
            return null;
        }
        try (InputStream in = ChatTemplates.class.getResourceAsStream("templates/" + name + ".jinja")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Rendered render(Request r) {
        JsonObject req = new JsonObject();
        req.add("messages", r.messages());
        req.addProperty("add_generation_prompt", r.addGenerationPrompt());
        req.addProperty("continue_final_message", r.continueFinalMessage());
        if (r.jsonSchema() != null) {
            req.add("json_schema", r.jsonSchema());
        }
        if (r.grammar() != null) {
            req.addProperty("grammar", r.grammar());
        }
        if (r.templateKwargs() != null) {
            req.add("chat_template_kwargs", r.templateKwargs());
        }
        if (r.tools() != null) {
            req.add("tools", r.tools().tools());
            req.addProperty("tool_choice", r.tools().choice());
            req.addProperty("parallel_tool_calls", r.tools().parallel());
        }
        byte[] out = nativeApply(handle(), GSON.toJson(req).getBytes(StandardCharsets.UTF_8));
        JsonObject o = GSON.fromJson(new String(out, StandardCharsets.UTF_8), JsonObject.class);
        return new Rendered(
                o.get("prompt").getAsString(),
                o.get("grammar").getAsString(),
                o.get("grammar_lazy").getAsBoolean(),
                strings(o.getAsJsonArray("additional_stops")),
                strings(o.getAsJsonArray("preserved_tokens")),
                o.get("generation_prompt").getAsString(),
                strings(o.getAsJsonArray("trigger_patterns")),
                o.getAsJsonArray("trigger_tokens").asList().stream().mapToInt(JsonElement::getAsInt).toArray(),
                o.get("format").getAsInt(),
                o.get("parser").getAsString());
    }

    /**
     * The assistant message in a finished answer, read the way {@code rendered}'s format writes tool calls
     * (llama.cpp's {@code common_chat_parse}): {"role", "content", "tool_calls"?}. Text that does not parse (an answer
     * cut off inside a call) comes back as plain content. {@code partial}: the answer is still being written (a stream):
     * what reads so far, the last call's arguments possibly incomplete.
     */
    public static JsonObject parse(Rendered rendered, String text, boolean partial) {
        JsonObject req = new JsonObject();
        req.addProperty("partial", partial);
        req.addProperty("format", rendered.format());
        req.addProperty("parser", rendered.parser());
        req.addProperty("generation_prompt", rendered.generationPrompt());
        req.addProperty("text", text);
        byte[] out = nativeParse(GSON.toJson(req).getBytes(StandardCharsets.UTF_8));
        return GSON.fromJson(new String(out, StandardCharsets.UTF_8), JsonObject.class);
    }

    private static List<String> strings(JsonArray a) {
        return a == null ? List.of() : a.asList().stream().map(JsonElement::getAsString).toList();
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        model.release();
    }

    private static native long nativeInit(long model, byte[] overrideTemplate);

    private static native void nativeFree(long h);

    private static native byte[] nativeApply(long h, byte[] request);

    private static native byte[] nativeParse(byte[] request);
}
