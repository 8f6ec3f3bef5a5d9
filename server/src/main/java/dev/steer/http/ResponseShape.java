package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.SteerRecord;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * How one generation is spelled in OpenAI's JSON: as a chat completion or as a (legacy) text completion. The
 * records below are the wire shapes, written by {@link dev.steer.json.Json} (snake_case names, explicit nulls).
 */
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

    /**
     * A response, a chunk, the usage chunk or the steer chunk: the same envelope. {@code usage} and {@code steer}
     * appear only where they mean something (OpenAI's chunks have no usage field until the last one).
     */
    record Envelope(String id, String object, long created, String model, String systemFingerprint, List<?> choices,
                    @OmitWhenNull UsageJson usage, @OmitWhenNull SteerNote steer) {}

    record UsageJson(int promptTokens, int completionTokens, int totalTokens, PromptTokensDetails promptTokensDetails) {
        static UsageJson of(Usage u) {
            return new UsageJson(u.promptTokens(), u.completionTokens(), u.promptTokens() + u.completionTokens(),
                    new PromptTokensDetails(u.cachedTokens()));
        }
    }

    record PromptTokensDetails(int cachedTokens) {}

    /**
     * The steer chunk's news: where the output was cut ({@code at} tokens kept), what was removed and inserted, how many
     * tokens the insertion is (so a client counting tokens knows where the continuation's start), and the output now;
     * {@code index}: the choice steered, given only when a request has several ({@code n} > 1).
     */
    record SteerNote(String id, int at, String removed, String inserted, int insertedTokens, String content, @OmitWhenNull Integer index) {
        static SteerNote of(SteerRecord r, Integer index) {
            return new SteerNote(r.id(), r.at(), r.rejectedText(), r.correctionText(), r.correctionTokens().length,
                    r.acceptedText() + r.correctionText(), index);
        }
    }

    /** One choice's answer: its text, its tokens (for log-probs) and why it ended. */
    record Result(String text, List<TokenEvent> tokens, FinishReason finish) {}

    /**
     * A streamed chunk of choice {@code index} carrying {@code text} (and the log-probs of {@code tokens}), or its final
     * one; null when the tokens add nothing a client can be told yet (with tools: the inside of a call's markup).
     */
    abstract Envelope chunk(int index, String text, List<TokenEvent> tokens, FinishReason finish, boolean first);

    Envelope chunk(String text, List<TokenEvent> tokens, FinishReason finish, boolean first) {
        return chunk(0, text, tokens, finish, first);
    }

    /** The whole response of a non-streamed request: one choice per result, in order. */
    abstract Envelope complete(List<Result> choices, Usage usage);

    Envelope complete(String text, List<TokenEvent> tokens, FinishReason finish, Usage usage) {
        return complete(List.of(new Result(text, tokens, finish)), usage);
    }

    abstract String chunkObject();

    /** The last chunk with stream_options.include_usage: no choices, only usage. */
    Envelope usageChunk(Usage usage) {
        return envelope(chunkObject(), List.of(), UsageJson.of(usage), null);
    }

    /**
     * Tells a streaming client that its output was steered: a chunk with no choices (OpenAI clients pass over it, as
     * over the usage chunk) and a "steer" object; the output is now {@code content}, and later chunks continue it.
     */
    Envelope steerChunk(SteerRecord r, Integer index) {
        return envelope(chunkObject(), List.of(), null, SteerNote.of(r, index));
    }

    Envelope envelope(String object, List<?> choices, UsageJson usage, SteerNote steer) {
        return new Envelope(id, object, created, model, "steer", choices, usage, steer);
    }

    static String finish(FinishReason f) {
        return f == null ? null : f.openAi;
    }

    /** The token as text; a token holding part of a UTF-8 character shows as U+FFFD, its bytes tell the truth. */
    static String tokenText(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static int[] unsigned(byte[] b) {
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = b[i] & 0xFF;
        }
        return out;
    }

    /** Real tokens only: the end-of-stream text release carries no token. */
    static List<TokenEvent> realTokens(List<TokenEvent> tokens) {
        return tokens.stream().filter(t -> t.token() != TokenEvent.NO_TOKEN).toList();
    }

    /** Log-probs were asked for (the tokens carry alternatives): the real tokens; otherwise null. */
    static List<TokenEvent> withLogprobs(List<TokenEvent> tokens) {
        List<TokenEvent> real = tokens == null ? List.of() : realTokens(tokens);
        return real.isEmpty() || real.get(0).top() == null ? null : real;
    }

    // ------------------------------------------------------------------------------------------ chat.completion

    static final class Chat extends ResponseShape {
        /** {@code delta} in a chunk, {@code message} in a whole response: exactly one is set. */
        record Choice(int index, @OmitWhenNull Delta delta, @OmitWhenNull Message message, Logprobs logprobs, String finishReason) {}

        /**
         * The first chunk names the role; the last has no content (OpenAI sends {@code "delta": {}}). With tools, a
         * chunk carries the text and the call deltas its tokens added ({@link ToolCallStream}).
         */
        record Delta(@OmitWhenNull String role, @OmitWhenNull String content, @OmitWhenNull List<ToolCalls.CallDelta> toolCalls) {
            Delta(String role, String content) {
                this(role, content, null);
            }
        }

        record Message(String role, String content, String refusal, @OmitWhenNull List<ToolCalls.Call> toolCalls) {}

        record Logprobs(List<TokenLogprob> content, String refusal) {}

        /** A token and its log-prob; the sampled token also lists its alternatives, the alternatives do not. */
        record TokenLogprob(String token, float logprob, int[] bytes, @OmitWhenNull List<TokenLogprob> topLogprobs) {}

        /** With tools: how the template writes calls, to read them back (null: no tools, the text is the answer). */
        private final ChatTemplates.Rendered tools;
        /** With tools: each streamed choice, read as it grows. */
        private final Map<Integer, ToolCallStream> streams = new ConcurrentHashMap<>();

        Chat(String id, String model, LlamaModel llama) {
            this(id, model, llama, null);
        }

        Chat(String id, String model, LlamaModel llama, ChatTemplates.Rendered tools) {
            super(id, model, llama);
            this.tools = tools;
        }

        @Override
        Envelope steerChunk(SteerRecord r, Integer index) {
            if (tools != null) {
                stream(index == null ? 0 : index).steered(r.acceptedText() + r.correctionText());
            }
            return super.steerChunk(r, index);
        }

        private ToolCallStream stream(int index) {
            return streams.computeIfAbsent(index, i -> new ToolCallStream(tools));
        }

        @Override
        String chunkObject() {
            return "chat.completion.chunk";
        }

        @Override
        Envelope chunk(int index, String text, List<TokenEvent> tokens, FinishReason finish, boolean first) {
            if (tools == null || first) {
                Delta delta = new Delta(first ? "assistant" : null, finish == null ? text : null);
                return envelope(chunkObject(), List.of(new Choice(index, delta, null, logprobs(tokens), finish(finish))), null, null);
            }
            ToolCallStream s = stream(index);
            ToolCallStream.Update u = finish == null ? s.append(text == null ? "" : text) : s.finish();
            Logprobs lp = logprobs(tokens);
            if (finish == null && u.isEmpty() && lp == null) {
                return null;  // the tokens so far read as the inside of a call's markup: nothing to tell yet
            }
            Delta delta = new Delta(null, u.content(), u.calls().isEmpty() ? null : u.calls());
            String reason = s.hasCalls() && finish == FinishReason.STOP ? "tool_calls" : finish(finish);
            return envelope(chunkObject(), List.of(new Choice(index, delta, null, lp, reason)), null, null);
        }

        @Override
        Envelope complete(List<Result> results, Usage usage) {
            List<Choice> choices = new ArrayList<>();
            for (int i = 0; i < results.size(); i++) {
                Result r = results.get(i);
                if (tools == null) {
                    choices.add(new Choice(i, null, new Message("assistant", r.text(), null, null), logprobs(r.tokens()), finish(r.finish())));
                    continue;
                }
                ToolCalls.Parsed p = ToolCalls.parse(tools, r.text());
                String reason = p.hasCalls() && r.finish() == FinishReason.STOP ? "tool_calls" : finish(r.finish());
                choices.add(new Choice(i, null, new Message("assistant", p.content(), null, p.calls()), logprobs(r.tokens()), reason));
            }
            return envelope("chat.completion", choices, UsageJson.of(usage), null);
        }

        private Logprobs logprobs(List<TokenEvent> tokens) {
            List<TokenEvent> real = withLogprobs(tokens);
            if (real == null) {
                return null;
            }
            List<TokenLogprob> content = new ArrayList<>();
            for (TokenEvent t : real) {
                List<TokenLogprob> top = new ArrayList<>();
                for (int i = 0; i < t.top().size(); i++) {
                    byte[] b = llama.tokenBytes(t.top().tokens()[i], false);
                    top.add(new TokenLogprob(tokenText(b), t.top().logprobs()[i], unsigned(b), null));
                }
                content.add(new TokenLogprob(tokenText(t.bytes()), t.logprob(), unsigned(t.bytes()), top));
            }
            return new Logprobs(content, null);
        }
    }

    // ------------------------------------------------------------------------------------------ text_completion

    static final class Text extends ResponseShape {
        record Choice(String text, int index, Logprobs logprobs, String finishReason) {}

        /** The legacy shape: parallel arrays of tokens, their log-probs, {token: logprob} maps of alternatives, offsets. */
        record Logprobs(List<String> tokens, List<Float> tokenLogprobs, List<Map<String, Float>> topLogprobs, List<Integer> textOffset) {}

        Text(String id, String model, LlamaModel llama) {
            super(id, model, llama);
        }

        @Override
        String chunkObject() {
            return "text_completion";
        }

        @Override
        Envelope chunk(int index, String text, List<TokenEvent> tokens, FinishReason finish, boolean first) {
            Choice c = new Choice(finish == null ? text : "", index, logprobs(tokens, 0), finish(finish));
            return envelope(chunkObject(), List.of(c), null, null);
        }

        @Override
        Envelope complete(List<Result> results, Usage usage) {
            List<Choice> choices = new ArrayList<>();
            for (int i = 0; i < results.size(); i++) {
                Result r = results.get(i);
                choices.add(new Choice(r.text(), i, logprobs(r.tokens(), 0), finish(r.finish())));
            }
            return envelope("text_completion", choices, UsageJson.of(usage), null);
        }

        private Logprobs logprobs(List<TokenEvent> tokens, int offset) {
            List<TokenEvent> real = withLogprobs(tokens);
            if (real == null) {
                return null;
            }
            List<String> toks = new ArrayList<>();
            List<Float> lps = new ArrayList<>();
            List<Map<String, Float>> tops = new ArrayList<>();
            List<Integer> offsets = new ArrayList<>();
            int at = offset;
            for (TokenEvent t : real) {
                String s = tokenText(t.bytes());
                toks.add(s);
                lps.add(t.logprob());
                Map<String, Float> top = new LinkedHashMap<>();  // two alternatives with one text: the later one's log-prob, as before
                for (int i = 0; i < t.top().size(); i++) {
                    top.put(tokenText(llama.tokenBytes(t.top().tokens()[i], false)), t.top().logprobs()[i]);
                }
                tops.add(top);
                offsets.add(at);
                at += s.length();
            }
            return new Logprobs(toks, lps, tops, offsets);
        }
    }
}
