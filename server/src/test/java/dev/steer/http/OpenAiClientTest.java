package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.RateLimitException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionFunctionTool;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionNamedToolChoice;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.chat.completions.StructuredChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.responses.Response;
import com.openai.models.responses.ResponseCreateParams;
import com.openai.models.responses.ResponseStatus;
import com.openai.models.responses.ResponseStreamEvent;
import com.openai.models.responses.StructuredResponseCreateParams;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The official OpenAI Java SDK, unmodified, against a live Steer server on the tiny test model. */
class OpenAiClientTest {
    private static TestServer server;
    private static OpenAIClient client;

    @BeforeAll
    static void start() {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 4, null);
        client = OpenAIOkHttpClient.builder().baseUrl(server.base() + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static ChatCompletionCreateParams.Builder greedy(String user, long maxTokens) {
        return ChatCompletionCreateParams.builder().model("tiny").addUserMessage(user).temperature(0.0).maxCompletionTokens(maxTokens);
    }

    @Test
    void chatNonStreamingAndStreamingAgree() {
        ChatCompletion c = client.chat().completions().create(greedy("hello world", 20).build());
        String text = c.choices().get(0).message().content().orElseThrow();
        assertFalse(text.isEmpty());
        assertEquals("tiny", c.model());
        long completion = c.usage().orElseThrow().completionTokens();
        assertTrue(completion >= 1 && completion <= 20);
        int promptTokens = TestModels.tinyLlama().tokenize(
                "<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n", true, true).length;
        assertEquals(promptTokens, c.usage().orElseThrow().promptTokens());

        StringBuilder streamed = new StringBuilder();
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        var params = greedy("hello world", 20).streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> {
                chunks.add(chunk);
                chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append));
            });
        }
        assertEquals(text, streamed.toString());
        ChatCompletionChunk last = chunks.get(chunks.size() - 1);
        assertTrue(last.choices().isEmpty(), "include_usage: a last chunk with only usage");
        assertEquals(completion, last.usage().orElseThrow().completionTokens());
        assertTrue(chunks.get(chunks.size() - 2).choices().get(0).finishReason().isPresent());
    }

    /** What the model must answer: only bounded JSON types, so even a random-weight model finishes. */
    public static class Verdict {
        public boolean ok;
        public Color color;
        public long count;
    }

    public enum Color { RED, GREEN, BLUE }

    @Test
    void jsonSchemaStructuredOutputParsesIntoAClass() {
        for (long seed = 1; seed <= 3; seed++) {
            StructuredChatCompletionCreateParams<Verdict> params = ChatCompletionCreateParams.builder()
                    .model("tiny").addUserMessage("judge this").seed(seed).temperature(1.0).maxCompletionTokens(200)
                    .responseFormat(Verdict.class).build();
            Verdict v = client.chat().completions().create(params).choices().get(0).message().content().orElseThrow();
            assertTrue(v.color != null, "color is one of the enum's values");
        }
    }

    @Test
    void stopSequencesEndTheOutput() {
        String full = client.chat().completions().create(greedy("the model", 30).build()).choices().get(0).message().content().orElseThrow();
        assertTrue(full.length() > 8, full);
        String stop = full.substring(5, 8);
        ChatCompletion c = client.chat().completions().create(greedy("the model", 30).stop(stop).build());
        assertEquals(full.substring(0, full.indexOf(stop)), c.choices().get(0).message().content().orElseThrow());
        assertEquals(ChatCompletion.Choice.FinishReason.STOP, c.choices().get(0).finishReason());
    }

    @Test
    void logprobsArePerTokenWithAlternatives() {
        ChatCompletion c = client.chat().completions().create(greedy("hello", 8).logprobs(true).topLogprobs(3).build());
        var content = c.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
        assertEquals(c.usage().orElseThrow().completionTokens(), content.size());
        for (var t : content) {
            assertEquals(3, t.topLogprobs().size());
            assertEquals(t.topLogprobs().get(0).logprob(), t.logprob(), 1e-6, "greedy: the top alternative is the token");
            assertTrue(t.logprob() <= 0);
        }
    }

    @Test
    void legacyTextCompletions() {
        Completion c = client.completions().create(CompletionCreateParams.builder()
                .model("tiny").prompt("hello world").maxTokens(10).temperature(0.0).build());
        assertFalse(c.choices().get(0).text().isEmpty());
        assertEquals(10, c.usage().orElseThrow().completionTokens() + (c.choices().get(0).finishReason().toString().equals("stop") ? 10 - c.usage().orElseThrow().completionTokens() : 0));
    }

    @Test
    void nChoicesAreSeededAndReproducible() {
        var params = ChatCompletionCreateParams.builder().model("tiny").addUserMessage("hello").n(2).seed(3L).temperature(1.0)
                .maxCompletionTokens(10).build();
        List<String> a = client.chat().completions().create(params).choices().stream().map(c -> c.message().content().orElseThrow()).toList();
        List<String> b = client.chat().completions().create(params).choices().stream().map(c -> c.message().content().orElseThrow()).toList();
        assertEquals(2, a.size());
        assertEquals(a, b);
        StringBuilder[] streamed = {new StringBuilder(), new StringBuilder()};
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed[(int) ch.index()]::append)));
        }
        assertEquals(a, List.of(streamed[0].toString(), streamed[1].toString()));
    }

    /** ToolCallsHttpTest's pick function, built with the SDK's own types. */
    private static ChatCompletionFunctionTool pickTool() {
        FunctionParameters.Builder params = FunctionParameters.builder();
        ToolCallsHttpTest.PICK_SCHEMA.entrySet().forEach(e -> params.putAdditionalProperty(e.getKey(), JsonValue.from(
                new com.google.gson.Gson().fromJson(e.getValue(), Object.class))));
        return ChatCompletionFunctionTool.builder()
                .function(FunctionDefinition.builder().name("pick").description("Pick a color").parameters(params.build()).build()).build();
    }

    @Test
    void toolCallsRequiredNamedAndAutoValidateAndAStreamedCallReassembles() {
        var required = ChatCompletionCreateParams.builder().model("tiny").addUserMessage("pick a color").temperature(0.0)
                .maxCompletionTokens(400).addTool(pickTool()).toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).build();
        var named = required.toBuilder().toolChoice(ChatCompletionNamedToolChoice.builder()
                .function(ChatCompletionNamedToolChoice.Function.builder().name("pick").build()).build()).build();
        String whole = null;
        for (var params : List.of(required, named)) {
            ChatCompletion c = client.chat().completions().create(params);
            assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, c.choices().get(0).finishReason());
            var calls = c.choices().get(0).message().toolCalls().orElseThrow();
            assertEquals(1, calls.size());
            ChatCompletionMessageFunctionToolCall call = calls.get(0).asFunction();
            assertEquals("pick", call.function().name());
            assertEquals(List.of(), ToolCallsHttpTest.violations(ToolCallsHttpTest.PICK_SCHEMA,
                    JsonParser.parseString(call.function().arguments()), "arguments"));
            whole = call.function().arguments();
        }
        // auto: an answer in text, or a call that validates (random weights rarely write the call's opening)
        ChatCompletion auto = client.chat().completions().create(required.toBuilder().toolChoice(ChatCompletionToolChoiceOption.Auto.AUTO)
                .maxCompletionTokens(40).build());
        auto.choices().get(0).message().toolCalls().ifPresent(calls -> calls.forEach(tc -> assertEquals(List.of(), ToolCallsHttpTest.violations(
                ToolCallsHttpTest.PICK_SCHEMA, JsonParser.parseString(tc.asFunction().function().arguments()), "arguments"))));
        assertTrue(auto.choices().get(0).message().content().isPresent() || auto.choices().get(0).message().toolCalls().isPresent());
        // the named call streamed: the fragments of its arguments make the whole call's (greedy)
        StringBuilder args = new StringBuilder();
        List<String> names = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(named)) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().toolCalls().ifPresent(tcs -> tcs.forEach(tc -> {
                assertEquals(0, tc.index());
                tc.function().flatMap(f -> f.name()).ifPresent(names::add);
                tc.function().flatMap(f -> f.arguments()).ifPresent(args::append);
            }))));
        }
        assertEquals(List.of("pick"), names, "the name comes once, with the call's first delta");
        assertEquals(whole, args.toString());
    }

    private static String outputText(Response r) {
        StringBuilder s = new StringBuilder();
        r.output().forEach(item -> item.message().ifPresent(m -> m.content().forEach(c -> c.outputText().ifPresent(t -> s.append(t.text())))));
        return s.toString();
    }

    @Test
    void responsesCreateStreamAndPreviousResponseId() {
        ResponseCreateParams params = ResponseCreateParams.builder().model("tiny").input("hello world").instructions("be brief")
                .temperature(0.0).maxOutputTokens(12L).build();
        Response r = client.responses().create(params);
        String text = outputText(r);
        assertFalse(text.isEmpty());
        long out = r.usage().orElseThrow().outputTokens();
        assertEquals(out == 12 ? ResponseStatus.INCOMPLETE : ResponseStatus.COMPLETED, r.status().orElseThrow());

        StringBuilder deltas = new StringBuilder();
        List<ResponseStreamEvent> events = new ArrayList<>();
        try (StreamResponse<ResponseStreamEvent> stream = client.responses().createStreaming(params)) {
            stream.stream().forEach(e -> {
                events.add(e);
                e.outputTextDelta().ifPresent(d -> deltas.append(d.delta()));
            });
        }
        assertEquals(text, deltas.toString());
        assertTrue(events.get(0).created().isPresent());
        ResponseStreamEvent last = events.get(events.size() - 1);
        Response end = last.completed().map(c -> c.response()).orElseGet(() -> last.incomplete().orElseThrow().response());
        assertEquals(text, outputText(end));

        Response next = client.responses().create(ResponseCreateParams.builder().model("tiny").input("and again").previousResponseId(r.id())
                .temperature(0.0).maxOutputTokens(4L).build());
        assertEquals(r.id(), next.previousResponseId().orElseThrow());
        Response alone = client.responses().create(ResponseCreateParams.builder().model("tiny").input("and again")
                .temperature(0.0).maxOutputTokens(4L).build());
        assertTrue(next.usage().orElseThrow().inputTokens() > alone.usage().orElseThrow().inputTokens() + out, "the first turn is the history");

        var unknown = assertThrows(BadRequestException.class, () -> client.responses().create(ResponseCreateParams.builder().model("tiny")
                .input("x").previousResponseId("resp_unknown").build()));
        assertTrue(unknown.getMessage().contains("resp_unknown"), unknown.getMessage());
    }

    @Test
    void responsesJsonSchemaParsesIntoAClass() {
        for (long seed = 1; seed <= 2; seed++) {
            StructuredResponseCreateParams<Verdict> params = ResponseCreateParams.builder().model("tiny").input("judge this").temperature(1.0)
                    .maxOutputTokens(200L).putAdditionalBodyProperty("seed", com.openai.core.JsonValue.from(seed)).text(Verdict.class).build();
            var r = client.responses().create(params);
            Verdict v = r.output().get(0).message().orElseThrow().content().get(0).outputText().orElseThrow();
            assertTrue(v.color != null, "color is one of the enum's values");
        }
    }

    @Test
    void errorsMapToTheSdksExceptions() {
        assertThrows(NotFoundException.class, () -> client.chat().completions().create(
                ChatCompletionCreateParams.builder().model("gpt-4o").addUserMessage("x").build()));
        var bad = assertThrows(BadRequestException.class, () -> client.chat().completions().create(greedy("x", 5).temperature(5.0).build()));
        assertTrue(bad.getMessage().contains("temperature"), bad.getMessage());
        assertThrows(BadRequestException.class, () -> client.chat().completions().create(greedy("x", 5).n(9).build()));

        try (TestServer locked = new TestServer(TestModels.tinyLlama(), "tiny", 1, "s3cret")) {
            OpenAIClient wrong = OpenAIOkHttpClient.builder().baseUrl(locked.base() + "/v1").apiKey("nope").maxRetries(0).build();
            assertThrows(UnauthorizedException.class, () -> wrong.chat().completions().create(greedy("x", 2).build()));
            OpenAIClient right = OpenAIOkHttpClient.builder().baseUrl(locked.base() + "/v1").apiKey("s3cret").maxRetries(0).build();
            assertFalse(right.chat().completions().create(greedy("x", 2).build()).choices().isEmpty());
        }
    }

    @Test
    void aFullQueueIsA429() throws Exception {
        try (TestServer small = new TestServer(TestModels.tinyLlama(), "tiny", 1, null)) {
            String endless = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],"
                    + "\"max_tokens\":1000000,\"ignore_eos\":true,\"stream\":true}";
            var http = java.net.http.HttpClient.newHttpClient();
            var request = java.net.http.HttpRequest.newBuilder(java.net.URI.create(small.base() + "/v1/chat/completions"))
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString(endless)).build();
            // one generating, sixteen waiting: the queue is full
            for (int i = 0; i < 17; i++) {
                http.sendAsync(request, java.net.http.HttpResponse.BodyHandlers.discarding());
            }
            for (int i = 0; i < 500 && small.engine.stats().queued.get() < 16; i++) {
                Thread.sleep(10);
            }
            assertEquals(16, small.engine.stats().queued.get());
            OpenAIClient c = OpenAIOkHttpClient.builder().baseUrl(small.base() + "/v1").apiKey("x").maxRetries(0).build();
            var e = assertThrows(RateLimitException.class, () -> c.chat().completions().create(greedy("x", 2).build()));
            assertTrue(e.getMessage().contains("busy"), e.getMessage());
        }
    }
}
