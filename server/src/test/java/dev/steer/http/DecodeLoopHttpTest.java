package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.testing.BlockingListener;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.Iterator;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16: one request must never crash, wedge or exhaust the server. A decode thread held inside one step (here by
 * a listener that blocks, as a stalled SQLite write would) shows on /health; a steer that waits for it too long is
 * withdrawn and answered 503, nothing changed; a steer whose store write fails fails its own stream only; a decode
 * thread that died shows on /health and new requests get 503 at once. Short timeouts (0.5 s step, 1 s steer); every
 * wait is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DecodeLoopHttpTest {
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestServer server;

    private TestServer start() {
        server = new TestServer(TestModels.tinyLlama(), new Engine.Config(2, 4096, 256, 2, 4), 60_000,
                TestServer.api("tiny", null).withTimeouts(Duration.ofMillis(500), Duration.ofSeconds(1)), System::currentTimeMillis);
        return server;
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    private static JsonObject json(HttpResponse<String> r) {
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static void waitFor(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(20);
        }
    }

    private String health() {
        try {
            HttpResponse<String> r = server.get("/health");
            return r.statusCode() + " " + json(r).get("status").getAsString();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** A chat stream read as it arrives. */
    final class Stream {
        final Iterator<String> lines;
        String id;
        int content;
        int steers;
        String error;
        boolean done;

        Stream(int maxTokens) throws Exception {
            String body = "{\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"max_tokens\":" + maxTokens
                    + ",\"messages\":[{\"role\":\"user\",\"content\":\"go on\"}]}";
            lines = http.send(HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofLines()).body().iterator();
        }

        /** Reads until {@code chunks} more content chunks arrived (all of it for -1), or the end. */
        Stream read(int chunks) {
            int seen = 0;
            while (!done && (id == null || chunks < 0 || seen < chunks) && lines.hasNext()) {
                String line = lines.next();
                if (line.equals("data: [DONE]")) {
                    done = true;
                } else if (line.startsWith("data: {")) {
                    JsonObject o = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                    if (o.has("error")) {
                        error = o.getAsJsonObject("error").get("message").getAsString();
                        continue;
                    }
                    id = o.get("id").getAsString();
                    if (o.has("steer")) {
                        steers++;
                    }
                    JsonArray choices = o.getAsJsonArray("choices");
                    if (!choices.isEmpty() && choices.get(0).getAsJsonObject().getAsJsonObject("delta").has("content")
                            && !choices.get(0).getAsJsonObject().getAsJsonObject("delta").get("content").getAsString().isEmpty()) {
                        seen++;
                        content++;
                    }
                }
            }
            return this;
        }
    }

    @Test
    void healthSaysStuckWhileTheDecodeThreadIsHeldInOneStep() throws Exception {
        start();
        assertEquals("200 ok", health());
        BlockingListener b = new BlockingListener();
        try {
            b.block(server.engine);
            waitFor("/health to say stuck", () -> health().equals("503 stuck"));
            JsonObject h = json(server.get("/health"));
            assertTrue(h.get("step_seconds").getAsDouble() >= 0.5, h.toString());
            assertTrue(h.get("reason").getAsString().contains("step"), h.toString());
        } finally {
            b.release.countDown();
        }
        waitFor("/health to say ok again", () -> health().equals("200 ok"));
    }

    @Test
    void aSteerTheDecodeThreadCannotTakeUpInTimeIsWithdrawnAnd503() throws Exception {
        start();
        // Long enough that it is still running when the decode thread is held: with 24 tokens the server had
        // written the whole answer before the client read its third chunk on a busy CI machine, and a steer of a
        // finished answer is a continuation, which waited for the held thread and came back as a 200 stream.
        // Ends at the context's length.
        Stream a = new Stream(100_000).read(3);
        BlockingListener b = new BlockingListener();
        try {
            b.block(server.engine);
            JsonObject e = TestServer.assertApiError(server.post("/v1/chat/completions/" + a.id + "/steer", "{\"at\": 1, \"text\": \" X\"}"), 503);
            assertEquals("steer_timeout", e.get("code").getAsString());
            assertTrue(e.get("message").getAsString().contains("nothing changed"), e.toString());
        } finally {
            b.release.countDown();
        }

        a.read(-1);
        assertTrue(a.done && a.error == null, "the stream ran on to its end");
        assertEquals(0, a.steers, "the withdrawn steer was never applied");
        assertEquals(0, json(server.get("/v1/steers?session_id=" + a.id)).getAsJsonArray("data").size(), "nothing recorded");
        HttpResponse<String> again = server.post("/v1/chat/completions/" + a.id + "/steer", "{\"at\": 1, \"text\": \" X\"}");
        assertEquals(200, again.statusCode(), "steering is free again: " + again.body());
    }

    @Test
    void aSteerWhoseStoreWriteFailsFailsItsOwnStreamOnly() throws Exception {
        start();
        Stream a = new Stream(100_000).read(3);
        Stream other = new Stream(20).read(1);
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + server.dataDir.resolve("steers.db"));
             Statement st = c.createStatement()) {
            st.execute("CREATE TRIGGER full_disk BEFORE INSERT ON steers BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END");
        }
        JsonObject e = TestServer.assertApiError(server.post("/v1/chat/completions/" + a.id + "/steer", "{\"at\": 1, \"text\": \" X\"}"), 500);
        assertEquals("steer_failed", e.get("code").getAsString());
        assertTrue(e.get("message").getAsString().contains("disk is full"), e.toString());
        a.read(-1);
        assertTrue(a.done && a.error != null && a.error.contains("disk is full"), "its client got an error: " + a.error);

        other.read(-1);
        assertTrue(other.done && other.error == null, "the other stream ran on to its end");
        HttpResponse<String> next = server.post("/v1/chat/completions",
                "{\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"still there?\"}]}");
        assertEquals(200, next.statusCode(), next.body());
        assertEquals("200 ok", health());
    }

    @Test
    void aDeadDecodeThreadShowsOnHealthAndNewRequestsGet503() throws Exception {
        start();
        server.engine.submit(GenerationRequest.greedy(server.engine.model().tokenize("die", true, false), 4), new GenerationListener() {
            @Override
            public void onToken(TokenEvent event) {
                throw new Error("an Error, not an exception: the decode thread cannot go on (test)");
            }

            @Override
            public void onFinish(FinishReason reason, Usage usage) {}

            @Override
            public void onError(RuntimeException error) {}
        });
        waitFor("/health to say dead", () -> health().equals("503 dead"));
        assertTrue(json(server.get("/health")).get("reason").getAsString().contains("cannot go on"));
        JsonObject e = TestServer.assertApiError(server.post("/v1/chat/completions", "{\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"), 503);
        assertEquals("engine_unavailable", e.get("code").getAsString());
    }
}
