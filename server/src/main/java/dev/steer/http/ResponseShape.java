package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.steer.engine.FinishReason;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.llama.LlamaModel;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** How one generation is spelled in OpenAI's JSON: as a chat completion or as a (legacy) text completion. */
abstract sealed class ResponseShape {
    final String id;
    final String model;
    final long created = System.currentTimeMillis() / 1000;
    final LlamaModel llama;

    ResponseShape(String id, String model, LlamaModel llama) {
        this.id = id;
        this.model = model;
        this.llama = llama;
    }

    /** A streamed chunk carrying {@code text} (and the log-probs of {@code tokens}), or the final one. */
    abstract JsonObject chunk(String text, List<TokenEvent> tokens, FinishReason finish, boolean first);

    /** The whole response of a non-streamed request. */
    abstract JsonObject complete(String text, List<TokenEvent> tokens, FinishReason finish, Usage usage);

    /** The last chunk with stream_options.include_usage: no choices, only usage. */
    JsonObject usageChunk(Usage usage) {
        JsonObject o = header(chunkObject());
        o.add("choices", new JsonArray());
        o.add("usage", usage(usage));
        return o;
    }

    abstract String chunkObject();

    /**
     * Tells a streaming client that its output was steered: a chunk with no choices (OpenAI clients pass over it, as
     * over the usage chunk) and a "steer" object; the output is now {@code content}, and later chunks continue it.
     */
    JsonObject steerChunk(dev.steer.steer.SteerRecord r) {
        JsonObject o = header(chunkObject());
        o.add("choices", new JsonArray());
        JsonObject steer = new JsonObject();
        steer.addProperty("id", r.id());
        steer.addProperty("at", r.at());
        steer.addProperty("removed", r.rejectedText());
        steer.addProperty("inserted", r.correctionText());
        steer.addProperty("content", r.acceptedText() + r.correctionText());
        o.add("steer", steer);
        return o;
    }

    JsonObject header(String object) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("object", object);
        o.addProperty("created", created);
        o.addProperty("model", model);
        o.addProperty("system_fingerprint", "steer");
        return o;
    }

    static JsonObject usage(Usage u) {
        JsonObject o = new JsonObject();
        o.addProperty("prompt_tokens", u.promptTokens());
        o.addProperty("completion_tokens", u.completionTokens());
        o.addProperty("total_tokens", u.promptTokens() + u.completionTokens());
        JsonObject details = new JsonObject();
        details.addProperty("cached_tokens", u.cachedTokens());
        o.add("prompt_tokens_details", details);
        return o;
    }

    static String finish(FinishReason f) {
        return f == null ? null : f.openAi;
    }

    /** The token as text; a token holding part of a UTF-8 character shows as U+FFFD, its bytes tell the truth. */
    static String tokenText(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static JsonArray bytes(byte[] b) {
        JsonArray a = new JsonArray();
        for (byte x : b) {
            a.add(x & 0xFF);
        }
        return a;
    }

    /** Real tokens only: the end-of-stream text release carries no token. */
    static List<TokenEvent> realTokens(List<TokenEvent> tokens) {
        return tokens.stream().filter(t -> t.token() != TokenEvent.NO_TOKEN).toList();
    }

    // ------------------------------------------------------------------------------------------ chat.completion

    static final class Chat extends ResponseShape {
        Chat(String id, String model, LlamaModel llama) {
            super(id, model, llama);
        }

        @Override
        String chunkObject() {
            return "chat.completion.chunk";
        }

        @Override
        JsonObject chunk(String text, List<TokenEvent> tokens, FinishReason finish, boolean first) {
            JsonObject delta = new JsonObject();
            if (first) {
                delta.addProperty("role", "assistant");
            }
            if (finish == null) {
                delta.addProperty("content", text);
            }
            return wrap(header(chunkObject()), "delta", delta, tokens, finish);
        }

        @Override
        JsonObject complete(String text, List<TokenEvent> tokens, FinishReason finish, Usage usage) {
            JsonObject message = new JsonObject();
            message.addProperty("role", "assistant");
            message.addProperty("content", text);
            message.add("refusal", null);
            JsonObject o = wrap(header("chat.completion"), "message", message, tokens, finish);
            o.add("usage", usage(usage));
            return o;
        }

        private JsonObject wrap(JsonObject o, String key, JsonObject body, List<TokenEvent> tokens, FinishReason finish) {
            JsonObject choice = new JsonObject();
            choice.addProperty("index", 0);
            choice.add(key, body);
            choice.add("logprobs", logprobs(tokens));
            choice.addProperty("finish_reason", finish(finish));
            JsonArray choices = new JsonArray();
            choices.add(choice);
            o.add("choices", choices);
            return o;
        }

        private JsonObject logprobs(List<TokenEvent> tokens) {
            List<TokenEvent> real = tokens == null ? List.of() : realTokens(tokens);
            if (real.isEmpty() || real.get(0).top() == null) {
                return null;
            }
            JsonArray content = new JsonArray();
            for (TokenEvent t : real) {
                JsonObject e = entry(t.bytes(), t.logprob());
                JsonArray top = new JsonArray();
                for (int i = 0; i < t.top().size(); i++) {
                    top.add(entry(llama.tokenBytes(t.top().tokens()[i], false), t.top().logprobs()[i]));
                }
                e.add("top_logprobs", top);
                content.add(e);
            }
            JsonObject o = new JsonObject();
            o.add("content", content);
            o.add("refusal", null);
            return o;
        }

        private static JsonObject entry(byte[] b, float logprob) {
            JsonObject e = new JsonObject();
            e.addProperty("token", tokenText(b));
            e.addProperty("logprob", logprob);
            e.add("bytes", bytes(b));
            return e;
        }
    }

    // ------------------------------------------------------------------------------------------ text_completion

    static final class Text extends ResponseShape {
        Text(String id, String model, LlamaModel llama) {
            super(id, model, llama);
        }

        @Override
        String chunkObject() {
            return "text_completion";
        }

        @Override
        JsonObject chunk(String text, List<TokenEvent> tokens, FinishReason finish, boolean first) {
            return wrap(header(chunkObject()), finish == null ? text : "", tokens, finish, 0);
        }

        @Override
        JsonObject complete(String text, List<TokenEvent> tokens, FinishReason finish, Usage usage) {
            JsonObject o = wrap(header("text_completion"), text, tokens, finish, 0);
            o.add("usage", usage(usage));
            return o;
        }

        private JsonObject wrap(JsonObject o, String text, List<TokenEvent> tokens, FinishReason finish, int offset) {
            JsonObject choice = new JsonObject();
            choice.addProperty("text", text);
            choice.addProperty("index", 0);
            choice.add("logprobs", logprobs(tokens, offset));
            choice.addProperty("finish_reason", finish(finish));
            JsonArray choices = new JsonArray();
            choices.add(choice);
            o.add("choices", choices);
            return o;
        }

        /** The legacy shape: parallel arrays of tokens, their log-probs, and {token: logprob} maps of alternatives. */
        private JsonObject logprobs(List<TokenEvent> tokens, int offset) {
            List<TokenEvent> real = tokens == null ? List.of() : realTokens(tokens);
            if (real.isEmpty() || real.get(0).top() == null) {
                return null;
            }
            JsonArray toks = new JsonArray(), lps = new JsonArray(), tops = new JsonArray(), offsets = new JsonArray();
            int at = offset;
            for (TokenEvent t : real) {
                String s = tokenText(t.bytes());
                toks.add(s);
                lps.add(t.logprob());
                JsonObject top = new JsonObject();
                for (int i = 0; i < t.top().size(); i++) {
                    top.addProperty(tokenText(llama.tokenBytes(t.top().tokens()[i], false)), t.top().logprobs()[i]);
                }
                tops.add(top);
                offsets.add(at);
                at += s.length();
            }
            JsonObject o = new JsonObject();
            o.add("tokens", toks);
            o.add("token_logprobs", lps);
            o.add("top_logprobs", tops);
            o.add("text_offset", offsets);
            return o;
        }
    }
}
