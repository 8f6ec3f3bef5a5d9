package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16: the decode thread never waits on a lock an HTTP request can hold for long, and a steer is still on disk
 * before it is acknowledged (docs/architecture.md, sharp edge 1). The test holds the steer store's lock, as a large
 * export or list does, while a steer is applied: the decode thread goes on (another stream runs to its end, /health
 * says ok), the steer is neither answered nor on the steered stream nor in the database; once the lock is free, the
 * record is in the database when the answer comes, and the steered stream shows the steer only after that.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BusyStoreHttpTest {
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private TestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    private static void waitFor(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(10);
        }
    }

    private long steersInDatabase() throws Exception {
        // Its own connection: what is on disk, whatever the store's lock.
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + server.dataDir.resolve("steers.db"));
             Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT COUNT(*) FROM steers")) {
            return r.getLong(1);
        }
    }

    private Iterator<String> stream(int maxTokens) throws Exception {
        String body = "{\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"max_tokens\":" + maxTokens
                + ",\"messages\":[{\"role\":\"user\",\"content\":\"go on\"}]}";
        return http.send(HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofLines()).body().iterator();
    }

    private static String idOf(Iterator<String> lines) {
        while (lines.hasNext()) {
            String line = lines.next();
            if (line.startsWith("data: {")) {
                return JsonParser.parseString(line.substring(6)).getAsJsonObject().get("id").getAsString();
            }
        }
        throw new AssertionError("the stream ended before its first chunk");
    }

    @Test
    void whileARequestHoldsTheStoreStreamsGoOnAndTheSteerIsAcknowledgedOnlyOnceStored() throws Exception {
        server = new TestServer(TestModels.tinyLlama(), new Engine.Config(2, 4096, 256, 2, 4), 60_000,
                TestServer.api("tiny", null), System::currentTimeMillis);
        Iterator<String> a = stream(100_000);
        String id = idOf(a);
        for (int i = 0; i < 3 && a.hasNext(); i++) {
            a.next();
        }
        // The steered stream, read as it arrives: when does its steer chunk come?
        AtomicLong steerChunkAt = new AtomicLong();
        AtomicLong errorAt = new AtomicLong();
        Thread reader = Thread.ofPlatform().start(() -> {
            while (a.hasNext()) {
                String line = a.next();
                if (line.contains("\"steer\":{") && steerChunkAt.get() == 0) {
                    steerChunkAt.set(System.nanoTime());
                }
                if (line.contains("\"error\"")) {
                    errorAt.set(System.nanoTime());
                }
            }
        });

        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread holder = Thread.ofPlatform().start(() -> {
            synchronized (server.store) {  // as SteerRoutes.tag does, or a list / export for as long as its query runs
                held.countDown();
                try {
                    release.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        long releasedAt;
        CompletableFuture<HttpResponse<String>> steer;
        try {
            assertTrue(held.await(10, TimeUnit.SECONDS));
            steer = http.sendAsync(HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions/" + id + "/steer"))
                    .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString("{\"at\": 1, \"text\": \" X\"}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            // The decode thread applied it (it waited on the store's lock here before: this never came).
            waitFor("the decode thread to apply the steer", () -> server.sessions.get(id).orElseThrow().lastSteerId() != null);

            Iterator<String> b = stream(24);
            idOf(b);
            int chunks = 0;
            boolean done = false;
            while (b.hasNext()) {
                String line = b.next();
                done |= line.equals("data: [DONE]");
                chunks += line.contains("\"content\"") ? 1 : 0;
            }
            assertTrue(done && chunks >= 10, "another stream ran to its end while the store was held: " + chunks + " chunks");
            HttpResponse<String> health = server.get("/health");
            assertEquals(200, health.statusCode(), health.body());

            assertFalse(steer.isDone(), "the steer was acknowledged while its record could not be written");
            assertEquals(0, steersInDatabase(), "nothing written while the store is held");
            assertEquals(0, steerChunkAt.get(), "the steered stream shows nothing of the steer before it is stored");
        } finally {
            releasedAt = System.nanoTime();
            release.countDown();
        }
        HttpResponse<String> ack = steer.get(30, TimeUnit.SECONDS);
        long stored = steersInDatabase();
        assertEquals(200, ack.statusCode(), ack.body());
        assertEquals(1, stored, "the record is on disk when the acknowledgement arrives");
        JsonObject record = JsonParser.parseString(ack.body()).getAsJsonObject();
        assertEquals(id, record.get("session_id").getAsString());
        assertEquals(record.get("id").getAsString(), JsonParser.parseString(server.get("/v1/steers/" + record.get("id").getAsString()).body())
                .getAsJsonObject().get("id").getAsString());
        HttpResponse<String> cancel = server.post("/v1/chat/completions/" + id + "/stop", "{}");
        assertEquals(200, cancel.statusCode(), cancel.body());
        reader.join(30_000);
        holder.join(10_000);
        assertTrue(steerChunkAt.get() > releasedAt, "the steer chunk came after the store was free");
        assertEquals(0, errorAt.get(), "the steered stream had no error");
    }
}
