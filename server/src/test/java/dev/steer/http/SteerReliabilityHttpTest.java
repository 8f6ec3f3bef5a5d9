package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Steers and their records under hostile or unlucky use (issue 16, items 6-8): a steer on a completion that is still
 * queued, repeated stops of a large request, and tags without end. One sequence, so a second stream has to queue.
 * Every wait is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SteerReliabilityHttpTest {
    private static TestServer server;
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void start() {
        ApiServer.Options api = TestServer.api("tiny", null);
        server = new TestServer(TestModels.tinyLlama(), new Engine.Config(1, 4096, 256, 2, 4), 60_000,
                new ApiServer.Options(api.host(), api.port(), api.modelId(), null, api.corsOrigins(), 16 << 20, false),
                System::currentTimeMillis);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static JsonObject json(HttpResponse<String> r) {
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static String chat(String user, String extra) {
        return "{\"temperature\":0,\"ignore_eos\":true,\"messages\":[{\"role\":\"user\",\"content\":\""
                + user + "\"}]" + extra + "}";
    }

    /** A chat stream read as it arrives. */
    static final class Stream {
        final Iterator<String> lines;
        String id;
        int content;
        boolean done;

        Stream(String body) throws Exception {
            HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            lines = http.send(req, HttpResponse.BodyHandlers.ofLines()).body().iterator();
        }

        /** Reads until the id is known and {@code chunks} more content chunks arrived (all of it for -1), or the end. */
        Stream read(int chunks) {
            int seen = 0;
            while (!done && (id == null || chunks < 0 || seen < chunks) && lines.hasNext()) {
                String line = lines.next();
                if (line.equals("data: [DONE]")) {
                    done = true;
                } else if (line.startsWith("data: {")) {
                    JsonObject o = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                    id = o.get("id").getAsString();
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

    private static void waitFor(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(10);
        }
    }

    // Item 6: steering a queued completion started a second generation in the same session while the original ran
    // on unsteered, and stored a record with nothing accepted or rejected.

    @Test
    void aQueuedCompletionIsRefusedA409AndCanBeSteeredOnceItStreams() throws Exception {
        Stream a = new Stream(chat("first", ",\"stream\":true,\"max_tokens\":100000")).read(3);
        Stream b = new Stream(chat("second", ",\"stream\":true,\"max_tokens\":100000")).read(0);  // the role chunk: its id, nothing generated
        waitFor("the second stream to queue", () -> server.engine.stats().queued.get() == 1);
        long requests = server.engine.stats().requests.get();

        JsonObject e = TestServer.assertApiError(server.post("/v1/chat/completions/" + b.id + "/steer", "{\"at\": 0, \"text\": \" X\"}"), 409);
        assertEquals("steer_not_started", e.get("code").getAsString());
        assertTrue(e.get("message").getAsString().contains("not started"), e.toString());
        assertEquals(requests, server.engine.stats().requests.get(), "no second generation");
        assertEquals(0, json(server.get("/v1/steers?session_id=" + b.id)).getAsJsonArray("data").size(), "nothing recorded");
        assertEquals(0, b.content, "the queued stream has not moved");

        assertEquals(200, server.post("/v1/chat/completions/" + a.id + "/stop", "").statusCode());
        b.read(3);
        HttpResponse<String> steered = server.post("/v1/chat/completions/" + b.id + "/steer", "{\"at\": 1, \"text\": \" X\"}");
        assertEquals(200, steered.statusCode(), steered.body());
        assertEquals(1, json(steered).get("at").getAsInt());
        assertEquals(requests, server.engine.stats().requests.get(), "steered in place, on its own stream");
        assertEquals(200, server.post("/v1/chat/completions/" + b.id + "/stop", "").statusCode());
        a.read(-1);
        b.read(-1);
        assertTrue(a.done && b.done);
    }

    // Item 7: every /stop stored the whole request body again (a 4 MB chat and 20 stops: +88 MB).

    @Test
    void repeatedStopsStoreTheRequestOnce() throws Exception {
        // A large request the record keeps: 16 stop strings of 128 KiB (unknown fields are not kept at all, see
        // SessionMemoryHttpTest); they never match, as they begin with a control character.
        String stop = "\u0001" + "x".repeat(128 << 10);
        String padding = ("\"\\u0001" + stop.substring(1) + "\",").repeat(16);
        padding = padding.substring(0, padding.length() - 1);
        HttpResponse<String> done = server.post("/v1/chat/completions", chat("long", ",\"max_tokens\":24,\"stop\":[" + padding + "]"));
        assertEquals(200, done.statusCode(), done.body());
        String id = json(done).get("id").getAsString();
        long before = databaseBytes(server.dataDir.resolve("steers.db"));
        List<String> records = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            HttpResponse<String> r = server.post("/v1/chat/completions/" + id + "/stop", "{\"at\": " + i + "}");
            assertEquals(200, r.statusCode(), r.body());
            records.add(json(r).get("id").getAsString());
        }
        long grown = databaseBytes(server.dataDir.resolve("steers.db")) - before;
        assertTrue(grown < 2 * padding.length(), "20 stops of one 2 MiB request grew the database by " + grown + " bytes");
        // Each record still carries the request it was made on.
        for (String r : List.of(records.get(0), records.get(19))) {
            JsonObject full = json(server.get("/v1/steers/" + r));
            assertEquals(stop, full.getAsJsonObject("request").getAsJsonArray("stop").get(15).getAsString());
            assertTrue(full.getAsJsonArray("prompt_tokens").size() > 0);
        }
    }

    /** The database's logical size (WAL included), as SQLite counts its pages. */
    private static long databaseBytes(Path file) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
             Statement s = c.createStatement();
             ResultSet pages = s.executeQuery("PRAGMA page_count")) {
            long n = pages.getLong(1);
            try (ResultSet size = s.executeQuery("PRAGMA page_size")) {
                return n * size.getLong(1);
            }
        }
    }

    // Item 8: tags per record had no bound (64 per request, any number of requests).

    @Test
    void tagsPerRecordAreBounded() throws Exception {
        HttpResponse<String> done = server.post("/v1/chat/completions", chat("tags", ",\"max_tokens\":4"));
        String id = json(done).get("id").getAsString();
        String steer = json(server.post("/v1/chat/completions/" + id + "/stop", "")).get("id").getAsString();
        JsonArray tags = new JsonArray();
        for (int i = 0; i < 40; i++) {
            tags.add("t" + i);
        }
        assertEquals(200, server.post("/v1/steers/" + steer + "/tags", "{\"tags\": " + tags + "}").statusCode());
        JsonArray more = new JsonArray();
        for (int i = 30; i < 64; i++) {
            more.add("t" + i);  // ten of them already there: 64 in all
        }
        HttpResponse<String> full = server.post("/v1/steers/" + steer + "/tags", "{\"tags\": " + more + "}");
        assertEquals(200, full.statusCode(), full.body());
        assertEquals(64, json(full).getAsJsonArray("tags").size());
        assertEquals(200, server.post("/v1/steers/" + steer + "/tags", "{\"tags\": [\"t5\"]}").statusCode(), "a tag it has already");

        JsonObject e = TestServer.assertApiError(server.post("/v1/steers/" + steer + "/tags", "{\"tags\": [\"one-more\"]}"), 400);
        assertEquals("tags", e.get("param").getAsString());
        assertEquals("too_many_tags", e.get("code").getAsString());
        assertTrue(e.get("message").getAsString().contains("64"), e.toString());
        assertEquals(64, json(server.get("/v1/steers/" + steer)).getAsJsonArray("tags").size(), "a refused request adds nothing");

        String other = json(server.post("/v1/chat/completions/" + id + "/stop", "")).get("id").getAsString();
        JsonObject tooLong = TestServer.assertApiError(server.post("/v1/steers/" + other + "/tags", "{\"tags\": [\"" + "y".repeat(65) + "\"]}"), 400);
        assertEquals("tags", tooLong.get("param").getAsString());
        assertTrue(tooLong.get("message").getAsString().contains("64 characters"), tooLong.toString());
        assertEquals(200, server.post("/v1/steers/" + other + "/tags", "{\"tags\": [\"" + "y".repeat(64) + "\"]}").statusCode());
    }
}
