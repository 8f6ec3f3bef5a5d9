package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.testing.TestModels;
import dev.steer.testing.SseLines;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16, item 4, over HTTP: with {@code --parallel 1 --max-queue 1 --session-ttl 2}, requests refused with 429
 * leave no session behind once the TTL has passed (they used to be kept for good, one per refusal). The sessions'
 * clock is moved forward instead of sleeping; every wait is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class QueueFullSessionsHttpTest {
    private static final String ENDLESS = "{\"stream\":true,\"ignore_eos\":true,\"max_tokens\":100000,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}";

    private final AtomicLong skew = new AtomicLong();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void refusedRequestsLeaveNoSessionAfterTheTtl() throws Exception {
        try (TestServer server = new TestServer(TestModels.tinyLlama(), new Engine.Config(1, 4096, 256, 2, 1), 2_000,
                TestServer.api("tiny", null), () -> System.currentTimeMillis() + skew.get())) {
            Iterator<String> a = stream(server);
            String aId = idAndFirstToken(a);
            Iterator<String> b = stream(server);
            String bId = idOf(b.next());
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.engine.stats().queued.get() < 1) {
                assertTrue(System.nanoTime() < deadline, "the second request did not queue");
                Thread.sleep(10);
            }
            for (int i = 0; i < 5; i++) {
                HttpResponse<String> r = send(server, "/v1/chat/completions",
                        "{\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"more " + i + "\"}]}");
                assertEquals(429, r.statusCode(), r.body());
                JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
                assertEquals("rate_limit_exceeded", e.get("type").getAsString());
                assertTrue(e.has("message") && e.has("param") && e.has("code"), r.body());
            }

            skew.addAndGet(3_000);  // past the TTL: what was refused is gone; the two that run stay
            assertEquals(2, sessions(server), "only the running and the queued completion");
            assertEquals(200, send(server, "/v1/chat/completions/" + aId + "/stop", "").statusCode());
            assertEquals(200, send(server, "/v1/chat/completions/" + bId + "/stop", "").statusCode());
            drain(a);
            drain(b);
            assertEquals(2, sessions(server), "finished, and steerable for the TTL");
            skew.addAndGet(3_000);
            assertEquals(0, sessions(server));
        }
    }

    private Iterator<String> stream(TestServer server) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(ENDLESS)).build();
        return http.send(req, HttpResponse.BodyHandlers.ofLines()).body().iterator();
    }

    private HttpResponse<String> send(TestServer server, String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(server.base() + path)).timeout(Duration.ofSeconds(20))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String idOf(String line) {
        assertTrue(line.startsWith("data: {"), line);
        return JsonParser.parseString(line.substring(6)).getAsJsonObject().get("id").getAsString();
    }

    private static String idAndFirstToken(Iterator<String> lines) {
        return SseLines.idAndFirstToken(lines);
    }

    private static void drain(Iterator<String> lines) {
        SseLines.drain(lines);
    }

    private int sessions(TestServer server) throws Exception {
        return SseLines.sessions(http, server);
    }
}
