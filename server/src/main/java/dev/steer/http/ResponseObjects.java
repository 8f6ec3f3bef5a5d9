package dev.steer.http;

import com.google.gson.JsonElement;
import dev.steer.engine.FinishReason;
import dev.steer.engine.Usage;
import dev.steer.steer.SteerRecord;
import java.util.List;
import java.util.Map;

/**
 * How one generation is spelled in the Responses API's JSON: the {@code response} object, its one output message
 * (one {@code output_text} part), its usage, and the typed events of a stream. The records below are the wire shapes,
 * written by {@link dev.steer.json.Json} (snake_case names, explicit nulls), with the fields the official SDKs read
 * (openai-python {@code types/responses}); an instance holds what every snapshot of one response repeats.
 *
 * @param maxOutputTokens null: not given (until the context is full)
 * @param format          {@code text.format} as the client sent it (echoed back), or {@code {"type": "text"}}
 */
record ResponseObjects(String id, String messageId, String model, long createdAt, String instructions, Integer maxOutputTokens,
                       String previousResponseId, double temperature, double topP, JsonElement format) {

    /** Tools are not supported yet: every response says there are none. */
    record Response(String id, String object, long createdAt, String status, Object error, IncompleteDetails incompleteDetails,
                    String instructions, Integer maxOutputTokens, String model, List<OutputMessage> output, boolean parallelToolCalls,
                    String previousResponseId, double temperature, double topP, TextConfig text, String toolChoice, List<Object> tools,
                    String truncation, ResponseUsage usage, Map<String, String> metadata, boolean store) {}

    /** Why a response is incomplete; here only ever {@code max_output_tokens} (the limit or the context was reached). */
    record IncompleteDetails(String reason) {}

    record TextConfig(JsonElement format) {}

    /** The assistant's message: {@code content} is one output_text part (none yet in the first stream events). */
    record OutputMessage(String id, String type, String status, List<OutputText> content, String role) {}

    /** Log-probs are not offered on this API (chat completions has them): always an empty list. */
    record OutputText(String type, List<Object> annotations, List<Object> logprobs, String text) {}

    record ResponseUsage(int inputTokens, InputTokensDetails inputTokensDetails, int outputTokens,
                         OutputTokensDetails outputTokensDetails, int totalTokens) {}

    record InputTokensDetails(int cachedTokens, int cacheWriteTokens) {}

    record OutputTokensDetails(int reasoningTokens) {}

    // ------------------------------------------------------------------------------------------ stream events

    /** A stream event: its {@code type} names it on the {@code event:} line as well. */
    sealed interface Event permits Lifecycle, ItemEvent, PartEvent, TextDelta, TextDone, Steered, ErrorEvent {
        String type();
    }

    /** response.created, response.in_progress, response.completed, response.incomplete, response.failed. */
    record Lifecycle(String type, int sequenceNumber, Response response) implements Event {}

    /** response.output_item.added / .done. */
    record ItemEvent(String type, int sequenceNumber, int outputIndex, OutputMessage item) implements Event {}

    /** response.content_part.added / .done. */
    record PartEvent(String type, int sequenceNumber, String itemId, int outputIndex, int contentIndex, OutputText part) implements Event {}

    record TextDelta(String type, int sequenceNumber, String itemId, int outputIndex, int contentIndex, String delta, List<Object> logprobs) implements Event {}

    record TextDone(String type, int sequenceNumber, String itemId, int outputIndex, int contentIndex, String text, List<Object> logprobs) implements Event {}

    /**
     * Ours, not OpenAI's: the output was steered. The text so far is now {@code steer.content}, and later deltas
     * continue it (a client that ignores unknown events still gets the whole text in output_text.done).
     */
    record Steered(String type, int sequenceNumber, String itemId, int outputIndex, int contentIndex, ResponseShape.SteerNote steer) implements Event {}

    record ErrorEvent(String type, int sequenceNumber, String code, String message, String param) implements Event {}

    // ------------------------------------------------------------------------------------------ snapshots

    /** The response while it runs: no output yet, no usage. */
    Response inProgress() {
        return response("in_progress", List.of(), null, null);
    }

    /** The response once the generation ended. */
    Response finished(String text, FinishReason finish, Usage usage) {
        return response(status(finish), List.of(message(status(finish), text)), incomplete(finish), usageOf(usage));
    }

    Response failed() {
        return response("failed", List.of(), null, null);
    }

    /** The message item; {@code text} null: no content part yet. */
    OutputMessage message(String status, String text) {
        return new OutputMessage(messageId, "message", status, text == null ? List.of() : List.of(part(text)), "assistant");
    }

    static OutputText part(String text) {
        return new OutputText("output_text", List.of(), List.of(), text);
    }

    /**
     * Reaching the output limit (or the context's end) leaves the response incomplete, as OpenAI's does. A cancelled
     * generation (the client or /stop ended it) is shown as completed, as chat completions show it as "stop".
     */
    static String status(FinishReason finish) {
        return finish == FinishReason.LENGTH ? "incomplete" : "completed";
    }

    private static IncompleteDetails incomplete(FinishReason finish) {
        return finish == FinishReason.LENGTH ? new IncompleteDetails("max_output_tokens") : null;
    }

    private static ResponseUsage usageOf(Usage u) {
        return new ResponseUsage(u.promptTokens(), new InputTokensDetails(u.cachedTokens(), 0), u.completionTokens(),
                new OutputTokensDetails(0), u.promptTokens() + u.completionTokens());
    }

    private Response response(String status, List<OutputMessage> output, IncompleteDetails incomplete, ResponseUsage usage) {
        return new Response(id, "response", createdAt, status, null, incomplete, instructions, maxOutputTokens, model, output, true,
                previousResponseId, temperature, topP, new TextConfig(format), "auto", List.of(), "disabled", usage, Map.of(), true);
    }

    static ResponseShape.SteerNote note(SteerRecord r) {
        return ResponseShape.SteerNote.of(r, null);
    }
}
