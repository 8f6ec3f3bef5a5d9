package dev.steer.steer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.json.Json;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.LlamaModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Steer records as training data for other tools, one JSON object per line, each the pair a Steer job trains
 * ({@link SteerPair}): after the context, the correction is preferred over what the model had generated there
 * (cut to the correction's length). Rejections (stops without a correction) have no preferred side and are left
 * out of every format.
 */
public final class Exports {
    /** TRL DPOTrainer's line. Every line ends with the steer it came from. */
    record TrlDpo(String prompt, String chosen, String rejected, String steerId) {}

    record TrlSft(String prompt, String completion, String steerId) {}

    record OpenAiSft(List<Message> messages, String steerId) {}

    record OpenAiDpo(Input input, List<Message> preferredOutput, List<Message> nonPreferredOutput, String steerId) {}

    record Input(List<Message> messages) {}

    /**
     * A message: role and content as the client sent them (content may be an array of parts), and for OpenAI's SFT
     * format the assistant messages' weight. A null content is left out, as the client's JSON null was before.
     */
    record Message(JsonElement role, @OmitWhenNull JsonElement content, @OmitWhenNull Integer weight) {}

    /** The formats {@code GET /v1/steers/export?format=...} offers. */
    public enum Format {
        /** TRL DPOTrainer, standard format: {"prompt", "chosen", "rejected"}; the prompt is the templated context. */
        TRL_DPO,
        /** TRL SFTTrainer, prompt-completion format: loss only on "completion" (completion_only_loss). */
        TRL_SFT,
        /** OpenAI fine-tuning, chat format: the accepted prefix as an assistant message of weight 0, the correction of weight 1. */
        OPENAI_SFT,
        /** OpenAI preference fine-tuning: {"input": {"messages"}, "preferred_output", "non_preferred_output"}. */
        OPENAI_DPO;

        public static Format parse(String s) {
            return valueOf(s.toUpperCase(Locale.ROOT).replace('-', '_'));
        }
    }

    private Exports() {}

    public static String jsonl(List<SteerRecord> records, Format format, LlamaModel model) {
        StringBuilder out = new StringBuilder();
        for (SteerRecord r : records) {
            if (!r.kind().equals("steer") || !SteerPair.of(r).teaches()) {
                continue;  // a rejection, or a correction that only repeats the model: no preferred side
            }
            out.append(Json.write(line(r, format, model))).append('\n');
        }
        return out.toString();
    }

    static Record line(SteerRecord r, Format format, LlamaModel model) {
        SteerPair pair = SteerPair.of(r);
        String keptText = span(model, new int[0], pair.kept());
        String context = model.detokenize(pair.prompt(), false, true) + keptText;
        String chosen = span(model, pair.kept(), pair.chosen());
        String rejectedText = span(model, pair.kept(), pair.rejected());
        // The SFT tools have no preservation term: the continuation the person let run goes into the completion,
        // so the model learns to go on after the correction (Steer's own jobs keep it under the KL term instead).
        String completion = chosen + span(model, SteerPair.concat(pair.kept(), pair.chosen()), pair.continuation());
        String kept = prefill(r) + keptText;
        return switch (format) {
            case TRL_DPO -> new TrlDpo(context, chosen, rejectedText, r.id());
            case TRL_SFT -> new TrlSft(context, completion, r.id());
            case OPENAI_SFT -> {
                List<Message> messages = messages(r);
                if (!kept.isEmpty()) {
                    messages.add(assistant(kept, 0));
                }
                messages.add(assistant(completion, 1));
                yield new OpenAiSft(messages, r.id());
            }
            case OPENAI_DPO -> new OpenAiDpo(new Input(messages(r)), List.of(assistant(kept + chosen, null)),
                    List.of(assistant(kept + rejectedText, null)), r.id());
        };
    }

    /**
     * The text {@code span} adds after {@code before}: detokenized together, less the text of {@code before} alone.
     * Detokenizing the span by itself could lose a leading space (SentencePiece vocabularies strip it from a
     * sequence's first token) or split a character whose bytes straddle the cut.
     */
    public static String span(LlamaModel model, int[] before, int[] span) {
        String head = model.detokenize(before, false, false);
        String all = model.detokenize(SteerPair.concat(before, span), false, false);
        return all.startsWith(head) ? all.substring(head.length()) : model.detokenize(span, false, false);
    }

    private static JsonArray requestMessages(SteerRecord r) {
        JsonElement req = JsonParser.parseString(r.requestJson());
        return req.isJsonObject() && req.getAsJsonObject().has("messages") ? req.getAsJsonObject().getAsJsonArray("messages") : new JsonArray();
    }

    /** The content of a trailing assistant message the client prefilled (it belongs to the answer), or "". */
    private static String prefill(SteerRecord r) {
        JsonArray m = requestMessages(r);
        if (m.isEmpty()) {
            return "";
        }
        JsonObject last = m.get(m.size() - 1).getAsJsonObject();
        JsonElement content = last.get("content");  // absent from an assistant message of tool calls only
        return last.get("role").getAsString().equals("assistant") && content != null && content.isJsonPrimitive()
                ? content.getAsString() : "";
    }

    /** The conversation as the client sent it, without a trailing assistant prefill. */
    private static List<Message> messages(SteerRecord r) {
        JsonArray all = requestMessages(r);
        List<Message> out = new ArrayList<>();
        int n = endsWithAssistant(all) ? all.size() - 1 : all.size();
        for (int i = 0; i < n; i++) {
            JsonObject m = all.get(i).getAsJsonObject();
            JsonElement content = m.get("content");
            out.add(new Message(m.get("role"), content == null || content.isJsonNull() ? null : content, null));
        }
        return out;
    }

    private static boolean endsWithAssistant(JsonArray m) {
        return !m.isEmpty() && m.get(m.size() - 1).getAsJsonObject().get("role").getAsString().equals("assistant");
    }

    /** @param weight OpenAI SFT's loss weight (0: context, 1: learn); null for formats without one */
    private static Message assistant(String content, Integer weight) {
        return new Message(new com.google.gson.JsonPrimitive("assistant"), new com.google.gson.JsonPrimitive(content), weight);
    }
}
