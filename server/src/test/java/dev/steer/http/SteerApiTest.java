package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.GenerationRequest;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Steering over HTTP: mid-stream on the same connection, after the end, the records, and bad steers. */
class SteerApiTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(model, "tiny", 2, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /** A streaming response read line by line as it arrives. */
    static final class LiveStream {
        final Iterator<String> lines;
        String id;
        final StringBuilder before = new StringBuilder();
        final StringBuilder after = new StringBuilder();
        JsonObject steer;
        boolean done;

        LiveStream(String body) throws Exception {
            this("/v1/chat/completions", body);
        }

        LiveStream(String path, String body) throws Exception {
            HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + path))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            Stream<String> s = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines()).body();
            lines = s.iterator();
        }

        /** Reads chunks until {@code contentChunks} content deltas arrived (or the stream ended). */
        void read(int contentChunks) {
            int seen = 0;
            while (!done && (contentChunks < 0 || seen < contentChunks) && lines.hasNext()) {
                String line = lines.next();
                if (line.equals("data: [DONE]")) {
                    done = true;
                } else if (line.startsWith("data: {")) {
                    JsonObject o = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                    id = o.get("id").getAsString();
                    if (o.has("steer")) {
                        steer = o.getAsJsonObject("steer");
                        continue;
                    }
                    JsonArray choices = o.getAsJsonArray("choices");
                    if (!choices.isEmpty() && choices.get(0).getAsJsonObject().getAsJsonObject("delta").has("content")) {
                        String c = choices.get(0).getAsJsonObject().getAsJsonObject("delta").get("content").getAsString();
                        (steer == null ? before : after).append(c);
                        if (!c.isEmpty()) {
                            seen++;
                        }
                    }
                }
            }
        }
    }

    private static String body(String user, String extra) {
        return "{\"model\":\"tiny\",\"stream\":true,\"temperature\":0,\"ignore_eos\":true,\"messages\":[{\"role\":\"user\",\"content\":\""
                + user + "\"}]" + extra + "}";
    }

    private static JsonObject json(HttpResponse<String> r) {
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static int[] ints(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    private static int[] concat(int[]... parts) {
        return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
    }

    @Test
    void steerMidStreamContinuesOnTheSameStreamAndIsRecordedTokenExactly() throws Exception {
        LiveStream s = new LiveStream(body("hello world", ",\"max_tokens\":100000"));
        s.read(10);
        long computedBefore = server.engine.stats().promptTokensComputed.get();
        HttpResponse<String> ack = server.post("/v1/chat/completions/" + s.id + "/steer",
                "{\"at\": 6, \"text\": \"the steer is in\", \"max_tokens\": 15}");
        assertEquals(200, ack.statusCode(), ack.body());
        long computed = server.engine.stats().promptTokensComputed.get() - computedBefore;
        String steerId = json(ack).get("id").getAsString();
        s.read(-1);
        assertTrue(s.done);

        // the stream said where it was steered, then continued from the correction
        assertNotNull(s.steer, "a steer chunk on the same stream");
        assertEquals(steerId, s.steer.get("id").getAsString());
        assertEquals(6, s.steer.get("at").getAsInt());
        assertEquals("the steer is in", s.steer.get("inserted").getAsString());
        String content = s.steer.get("content").getAsString();
        assertTrue(content.endsWith("the steer is in"), content);
        assertTrue(s.before.toString().startsWith(content.substring(0, content.length() - "the steer is in".length())),
                "the kept prefix is what the client had received");

        JsonObject r = json(server.get("/v1/steers/" + steerId));
        int[] prompt = ints(r.get("prompt_tokens"));
        int[] accepted = ints(r.get("accepted_tokens"));
        int[] rejected = ints(r.get("rejected_tokens"));
        int[] correction = ints(r.get("correction_tokens"));
        int[] continuation = ints(r.get("continuation_tokens"));
        assertEquals(6, accepted.length);
        assertTrue(rejected.length >= 4, "everything past the fork");
        assertEquals(15, continuation.length);
        assertEquals(correction.length + 1, computed, "after the steer only the fork token and the correction were computed");

        // final text = accepted prefix + correction + continuation, and the record says the same
        String finalText = content + s.after;
        assertEquals(r.get("accepted").getAsString() + r.get("correction").getAsString() + r.get("continuation").getAsString(), finalText);
        assertEquals(model.detokenize(concat(accepted, correction, continuation), false, false), finalText);

        // token-exact: the prompt is the rendered template, and the context the model saw reproduces the continuation
        assertArrayEquals(model.tokenize("<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n", true, true), prompt);
        var fresh = new dev.steer.engine.Engine(model, new dev.steer.engine.Engine.Config(1, 1024, 256, 2, 1));
        try {
            var c = new CompletableFuture<List<Integer>>();
            List<Integer> got = new ArrayList<>();
            fresh.submit(new GenerationRequest(concat(prompt, accepted, correction), LlamaSampler.Params.greedy(), 15, List.of(), -1, true),
                    new dev.steer.engine.GenerationListener() {
                        public void onToken(dev.steer.engine.TokenEvent e) { got.add(e.token()); }
                        public void onFinish(dev.steer.engine.FinishReason f, dev.steer.engine.Usage u) { c.complete(got); }
                        public void onError(RuntimeException e) { c.completeExceptionally(e); }
                    });
            assertEquals(java.util.Arrays.stream(continuation).boxed().toList(), c.get(30, TimeUnit.SECONDS));
        } finally {
            fresh.close();
        }
        // the fork's log-probs: greedy had picked the rejected token
        assertEquals(rejected[0], r.getAsJsonArray("fork_top_logprobs").get(0).getAsJsonObject().get("token").getAsInt());
        JsonObject request = r.getAsJsonObject("request");
        assertEquals("hello world", request.getAsJsonArray("messages").get(0).getAsJsonObject().get("content").getAsString());
        assertTrue(r.get("created_at").getAsLong() > 0);
        assertEquals("tiny", r.get("model").getAsString());
        assertTrue(r.get("adapter_version").isJsonNull(), "the base model");
    }

    @Test
    void severalSteersInSequenceThenAfterTheEnd() throws Exception {
        LiveStream s = new LiveStream(body("the model", ",\"max_tokens\":100000"));
        s.read(8);
        assertEquals(200, server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 3, \"text\": \"abc\"}").statusCode());
        s.read(5);
        HttpResponse<String> second = server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at_char\": 5, \"text\": \"xyz\", \"max_tokens\": 4}");
        assertEquals(200, second.statusCode(), second.body());
        s.read(-1);
        assertTrue(s.steer.get("content").getAsString().endsWith("xyz"));

        // finished: the steer response itself streams the continuation, reusing the cached context
        long before = server.engine.stats().promptTokensComputed.get();
        HttpResponse<String> after = server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 2, \"text\": \"q\", \"max_tokens\": 3}");
        assertEquals(200, after.statusCode());
        assertTrue(after.body().contains("\"steer\":{") && after.body().endsWith("data: [DONE]\n\n"), after.body());
        int correction = model.tokenize("q", false, false).length;
        assertEquals(correction + 1, server.engine.stats().promptTokensComputed.get() - before);
        JsonObject chunk = JsonParser.parseString(after.body().lines().filter(l -> l.contains("\"steer\":{")).findFirst().orElseThrow()
                .substring(6)).getAsJsonObject().getAsJsonObject("steer");
        assertEquals(correction, chunk.get("inserted_tokens").getAsInt(), "the steer chunk says how many tokens the correction is");

        // Every steer was recorded, in order, as it was made: where it cut, what it inserted, what ran after it.
        JsonArray steers = json(server.get("/v1/steers?session_id=" + s.id)).getAsJsonArray("data");
        assertEquals(3, steers.size(), steers.toString());
        String[] corrections = {"abc", "xyz", "q"};
        int[] continuations = {-1, 4, 3};  // the first ran until the second steer cut it; the others to their max_tokens
        for (int i = 0; i < 3; i++) {
            JsonObject listed = steers.get(i).getAsJsonObject();
            JsonObject r = json(server.get("/v1/steers/" + listed.get("id").getAsString()));
            String which = "steer " + i + ": " + r;
            assertEquals("steer", r.get("kind").getAsString(), which);
            assertEquals(s.id, r.get("session_id").getAsString(), which);
            assertEquals(ints(r.get("accepted_tokens")).length, r.get("at").getAsInt(), which);
            assertTrue(r.get("correction").getAsString().endsWith(corrections[i]), which);
            assertEquals(model.detokenize(ints(r.get("correction_tokens")), false, false), r.get("correction").getAsString(), which);
            int continuation = ints(r.get("continuation_tokens")).length;
            if (continuations[i] < 0) {
                assertTrue(continuation > 0, "the first steer's continuation ended where the second steer cut: " + which);
            } else {
                assertEquals(continuations[i], continuation, which);
            }
        }
        // The live steer chunk too: its inserted text (the rest of the cut token + "xyz") is that record's correction tokens.
        JsonObject atChar = json(server.get("/v1/steers/" + steers.get(1).getAsJsonObject().get("id").getAsString()));
        assertEquals(ints(atChar.get("correction_tokens")).length, s.steer.get("inserted_tokens").getAsInt(), s.steer.toString());
        assertEquals(3, steers.get(0).getAsJsonObject().get("at").getAsInt());
        assertEquals(2, steers.get(2).getAsJsonObject().get("at").getAsInt());
        assertTrue(steers.get(1).getAsJsonObject().get("accepted").getAsString().length() <= 5, "at_char 5 keeps whole tokens before it");
    }

    /**
     * Two steers on one live completion at the same moment: one is applied, the other is refused with 409
     * steer_conflict and changes nothing. The decode thread is held meanwhile, so the first is still being applied
     * when the second arrives; once it is released, the first completes.
     */
    @Test
    void twoConcurrentSteersOnOneCompletionOneWinsOneGets409() throws Exception {
        LiveStream s = new LiveStream(body("race me", ",\"max_tokens\":100000"));
        s.read(6);
        String url = "/v1/chat/completions/" + s.id + "/steer";
        int records = json(server.get("/v1/steers?session_id=" + s.id)).getAsJsonArray("data").size();
        dev.steer.testing.BlockingListener hold = new dev.steer.testing.BlockingListener();
        List<HttpResponse<String>> answers = new ArrayList<>();
        // A thread each: the common pool may have one thread, and the barrier needs both requests waiting at once.
        java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
        try {
            hold.block(server.engine);
            java.util.concurrent.CyclicBarrier together = new java.util.concurrent.CyclicBarrier(2);
            List<CompletableFuture<HttpResponse<String>>> both = new ArrayList<>();
            for (String text : List.of("one", "two")) {
                both.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        together.await(10, TimeUnit.SECONDS);
                        return server.post(url, "{\"at\": 2, \"text\": \"" + text + "\", \"max_tokens\": 3}");
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }, threads));
            }
            // The loser is answered while the winner still waits for the held decode thread.
            HttpResponse<String> first = CompletableFuture.anyOf(both.toArray(CompletableFuture[]::new))
                    .thenApply(r -> (HttpResponse<String>) r).get(20, TimeUnit.SECONDS);
            TestServer.assertApiError(first, 409);
            assertEquals("steer_conflict", json(first).getAsJsonObject("error").get("code").getAsString(), first.body());
            hold.release.countDown();
            for (CompletableFuture<HttpResponse<String>> f : both) {
                answers.add(f.get(30, TimeUnit.SECONDS));
            }
        } finally {
            hold.release.countDown();
            threads.shutdown();
        }
        List<Integer> statuses = answers.stream().map(HttpResponse::statusCode).sorted().toList();
        assertEquals(List.of(200, 409), statuses, answers.stream().map(HttpResponse::body).toList().toString());
        HttpResponse<String> won = answers.stream().filter(r -> r.statusCode() == 200).findFirst().orElseThrow();
        s.read(-1);
        assertTrue(s.done);
        assertEquals(json(won).get("id").getAsString(), s.steer.get("id").getAsString(), "the stream shows the winner's steer");
        JsonArray recorded = json(server.get("/v1/steers?session_id=" + s.id)).getAsJsonArray("data");
        assertEquals(records + 1, recorded.size(), "one steer recorded, not two");
        assertEquals(200, server.post(url, "{\"at\": 1, \"text\": \"three\", \"max_tokens\": 2}").statusCode(),
                "the winner released the completion for the next steer");
    }

    /**
     * Steers sent as an 8-token answer comes to its natural end, from early to after the end: whichever side of the
     * end the decode thread sees the steer on, it is applied (in place, or continued as a new generation) and recorded
     * once; never refused, never lost, and the original stream still ends.
     */
    @Test
    void aSteerRacingTheNaturalEndOfItsAnswerIsAppliedEitherWay() throws Exception {
        int inPlace = 0, continued = 0;
        for (int chunks = 4; chunks <= 9; chunks++) {
            LiveStream s = new LiveStream(body("race the end " + chunks, ",\"max_tokens\":8"));
            s.read(chunks);
            HttpResponse<String> r = server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 1, \"text\": \"end\", \"max_tokens\": 2}");
            assertEquals(200, r.statusCode(), "after " + chunks + " chunks: " + r.body());
            if (r.body().startsWith("data: ")) {
                continued++;
                assertTrue(r.body().endsWith("data: [DONE]\n\n"), r.body());
            } else {
                inPlace++;
                assertEquals("steer", json(r).get("object").getAsString(), r.body());
            }
            s.read(-1);
            assertTrue(s.done, "the original stream ended");
            JsonArray recorded = json(server.get("/v1/steers?session_id=" + s.id)).getAsJsonArray("data");
            assertEquals(1, recorded.size(), "recorded once: " + recorded);
            assertTrue(recorded.get(0).getAsJsonObject().get("correction").getAsString().endsWith("end"));
        }
        System.err.printf("steers racing the end: %d applied in place, %d continued after the end%n", inPlace, continued);
        assertTrue(continued > 0, "the last tries come after the end");
    }

    @Test
    void badSteersGet4xxAndChangeNothing() throws Exception {
        LiveStream s = new LiveStream(body("hello", ",\"max_tokens\":100000,\"grammar\":\"root ::= [a-z ]+\""));
        s.read(6);
        String url = "/v1/chat/completions/" + s.id + "/steer";
        int records = json(server.get("/v1/steers")).getAsJsonArray("data").size();
        long steersApplied = server.engine.stats().steers.get();
        assertEquals(404, server.post("/v1/chat/completions/chatcmpl-nope/steer", "{\"at\":0,\"text\":\"a\"}").statusCode());
        assertEquals(400, server.post(url, "{\"at\": 1000000, \"text\": \"a\"}").statusCode());
        assertEquals(400, server.post(url, "{\"at\": 1, \"text\": \"\"}").statusCode());
        assertEquals(400, server.post(url, "{\"at\": 1}").statusCode());
        assertEquals(400, server.post(url, "{\"at\": 1, \"at_char\": 1, \"text\": \"a\"}").statusCode());
        assertEquals(400, server.post(url, "{\"at\": 1, \"text\": \"" + "word ".repeat(300) + "\"}").statusCode());
        HttpResponse<String> grammar = server.post(url, "{\"at\": 1, \"text\": \"ABC123\"}");
        assertEquals(400, grammar.statusCode(), grammar.body());
        assertTrue(grammar.body().contains("grammar"), grammar.body());
        server.sessions.get(s.id).orElseThrow().steering.set(true);  // as if another steer were being applied
        assertEquals(409, server.post(url, "{\"at\": 1, \"text\": \"a\"}").statusCode());
        server.sessions.get(s.id).orElseThrow().steering.set(false);
        // A stop at a place past the output is refused before anything is stopped.
        String stop = "/v1/chat/completions/" + s.id + "/stop";
        assertEquals(400, server.post(stop, "{\"at\": 1000000}").statusCode());
        assertEquals(400, server.post(stop, "{\"at_char\": 1000000}").statusCode());
        assertEquals(400, server.post(stop, "{\"at\": 1, \"at_char\": 1}").statusCode());
        assertEquals(records, json(server.get("/v1/steers")).getAsJsonArray("data").size(), "nothing was recorded");
        assertEquals(steersApplied, server.engine.stats().steers.get(), "nothing was applied");
        s.read(3);
        assertTrue(s.steer == null && !s.done, "the stream goes on untouched");
        assertEquals(200, server.post("/v1/chat/completions/" + s.id + "/stop", "").statusCode());
        s.read(-1);
        assertTrue(s.done);
    }

    @Test
    void recordsCanBeFilteredTaggedExcludedDeletedAndExported() throws Exception {
        LiveStream s = new LiveStream(body("export me", ",\"max_tokens\":100000"));
        s.read(5);
        String id = json(server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 2, \"text\": \"fine\", \"max_tokens\": 3}")).get("id").getAsString();
        s.read(-1);
        JsonObject tagged = json(server.post("/v1/steers/" + id + "/tags", "{\"tags\": [\"style\", \"unit\"]}"));
        assertEquals(Set.of("style", "unit"), Set.copyOf(tagged.getAsJsonArray("tags").asList().stream().map(JsonElement::getAsString).toList()));
        assertEquals(1, json(server.get("/v1/steers?tag=style&session_id=" + s.id)).getAsJsonArray("data").size());
        assertEquals(0, json(server.get("/v1/steers?tag=other&session_id=" + s.id)).getAsJsonArray("data").size());
        assertEquals(0, json(server.get("/v1/steers?since=" + (System.currentTimeMillis() + 60_000))).getAsJsonArray("data").size());
        assertEquals(400, server.get("/v1/steers?since=yesterday").statusCode());

        for (String format : List.of("trl_dpo", "trl_sft", "openai_sft", "openai_dpo")) {
            String jsonl = server.get("/v1/steers/export?format=" + format + "&session_id=" + s.id).body();
            String[] lines = jsonl.strip().split("\n");
            assertEquals(1, lines.length, format + ": " + jsonl);
            JsonObject o = JsonParser.parseString(lines[0]).getAsJsonObject();
            switch (format) {
                case "trl_dpo" -> {
                    assertTrue(o.get("prompt").getAsString().endsWith(json(server.get("/v1/steers/" + id)).get("accepted").getAsString()));
                    assertTrue(o.get("chosen").getAsString().startsWith("fine"));
                    assertFalse(o.get("rejected").getAsString().isEmpty());
                }
                case "trl_sft" -> assertTrue(o.has("prompt") && o.get("completion").getAsString().startsWith("fine"));
                case "openai_sft" -> {
                    JsonArray m = o.getAsJsonArray("messages");
                    assertEquals("user", m.get(0).getAsJsonObject().get("role").getAsString());
                    JsonObject last = m.get(m.size() - 1).getAsJsonObject();
                    assertEquals(1, last.get("weight").getAsInt());
                    assertEquals(0, m.get(m.size() - 2).getAsJsonObject().get("weight").getAsInt());
                }
                case "openai_dpo" -> {
                    assertEquals("export me", o.getAsJsonObject("input").getAsJsonArray("messages").get(0).getAsJsonObject().get("content").getAsString());
                    assertEquals(1, o.getAsJsonArray("preferred_output").size());
                    assertEquals(1, o.getAsJsonArray("non_preferred_output").size());
                }
                default -> throw new AssertionError(format);
            }
        }
        assertEquals(400, server.get("/v1/steers/export?format=csv").statusCode());

        assertTrue(json(server.post("/v1/steers/" + id + "/exclude", "{\"excluded\": true}")).get("excluded").getAsBoolean());
        assertEquals("", server.get("/v1/steers/export?format=trl_dpo&session_id=" + s.id).body(), "excluded from training data");
        assertEquals(200, server.delete("/v1/steers/" + id).statusCode());
        assertEquals(404, server.get("/v1/steers/" + id).statusCode());
        assertEquals(404, server.delete("/v1/steers/" + id).statusCode());
    }

    @Test
    void aStopWithoutCorrectionIsRecordedAsARejection() throws Exception {
        LiveStream s = new LiveStream(body("stop me", ",\"max_tokens\":100000"));
        s.read(6);
        JsonObject r = json(server.post("/v1/chat/completions/" + s.id + "/stop", "{\"at\": 4}"));
        s.read(-1);
        assertTrue(s.done);
        assertEquals("rejection", r.get("kind").getAsString());
        assertEquals(4, r.get("at").getAsInt());
        assertFalse(r.get("rejected").getAsString().isEmpty());
    }

    /** /stop at a character keeps the whole tokens before it; the token holding that character is rejected. */
    @Test
    void aStopAtACharacterRejectsFromTheTokenHoldingIt() throws Exception {
        LiveStream s = new LiveStream(body("stop me at a char", ",\"max_tokens\":12"));
        s.read(-1);
        JsonObject whole = json(server.get("/v1/steers/" + json(server.post("/v1/chat/completions/" + s.id + "/stop", "{}")).get("id").getAsString()));
        int[] out = ints(whole.get("accepted_tokens"));
        // Where each token's text starts in the output as the server decodes it (a token may hold part of a UTF-8
        // character: it then adds nothing until the next completes it). Cut one character into the first token
        // after the first whose text is at least 2 characters long: that token and the rest are rejected.
        dev.steer.llama.Utf8Stream u = new dev.steer.llama.Utf8Stream();
        int[] starts = new int[out.length + 1];
        for (int i = 0; i < out.length; i++) {
            starts[i + 1] = starts[i] + u.append(model.tokenBytes(out[i], false)).length();
        }
        int k = 1;
        while (k < out.length && starts[k + 1] - starts[k] < 2) {
            k++;
        }
        assertTrue(k < out.length, "some token of the answer is 2+ characters: " + whole);
        JsonObject r = json(server.post("/v1/chat/completions/" + s.id + "/stop", "{\"at_char\": " + (starts[k] + 1) + "}"));
        assertEquals(k, r.get("at").getAsInt(), "the token holding the character is rejected: " + r);
        assertArrayEquals(java.util.Arrays.copyOfRange(out, k, out.length), ints(json(server.get("/v1/steers/" + r.get("id").getAsString())).get("rejected_tokens")));
        assertEquals(400, server.post("/v1/chat/completions/" + s.id + "/stop", "{\"at\": 1, \"at_char\": 1}").statusCode());
    }

    /**
     * A continuation (a steer on a finished answer) is itself steerable while it streams: the steer that started it
     * holds {@code steering} only until the continuation is submitted, not while it streams (was 409 steer_conflict).
     */
    @Test
    void aContinuationCanBeSteeredWhileItStreams() throws Exception {
        LiveStream s = new LiveStream(body("continue me", ",\"max_tokens\":6"));
        s.read(-1);
        assertTrue(s.done);
        LiveStream c = new LiveStream("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 2, \"text\": \"q\", \"max_tokens\": 100000}");
        c.read(5);
        assertFalse(c.done, "the continuation still streams");
        HttpResponse<String> second = server.post("/v1/chat/completions/" + s.id + "/steer", "{\"at\": 4, \"text\": \"z\", \"max_tokens\": 3}");
        assertEquals(200, second.statusCode(), second.body());
        c.read(-1);
        assertTrue(c.done);
        JsonArray steers = json(server.get("/v1/steers?session_id=" + s.id)).getAsJsonArray("data");
        assertEquals(2, steers.size(), steers.toString());
        assertEquals(4, steers.get(1).getAsJsonObject().get("at").getAsInt());
    }

    /**
     * /stop records the whole output: it waits for the generation to end before taking it, so no token generated
     * between the cancel and the end is missing. A second /stop (nothing runs now) keeps all of it: the same tokens.
     */
    @Test
    void aStopRecordsEverythingTheGenerationProduced() throws Exception {
        LiveStream s = new LiveStream(body("stop me again", ",\"max_tokens\":100000"));
        s.read(6);
        JsonObject first = json(server.post("/v1/chat/completions/" + s.id + "/stop", "{\"at\": 3}"));
        s.read(-1);
        assertTrue(s.done);
        JsonObject whole = json(server.post("/v1/chat/completions/" + s.id + "/stop", "{}"));
        JsonObject firstDetail = json(server.get("/v1/steers/" + first.get("id").getAsString()));
        JsonObject wholeDetail = json(server.get("/v1/steers/" + whole.get("id").getAsString()));
        assertArrayEquals(ints(wholeDetail.get("accepted_tokens")),
                concat(ints(firstDetail.get("accepted_tokens")), ints(firstDetail.get("rejected_tokens"))), firstDetail.toString());
    }
}
