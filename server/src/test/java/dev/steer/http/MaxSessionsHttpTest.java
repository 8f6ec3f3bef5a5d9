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
 * Architecture sharp edge 15 (issue 16): the number of sessions is bounded by {@code --max-sessions}. With 2: a new
 * completion pushes out the session that finished longest ago; when both are running, a new one gets 429 in the
 * OpenAI error shape and nothing is opened for it; once one finishes, completions are served again. The sessions'
 * clock is moved instead of sleeping for the TTL; every wait is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MaxSessionsHttpTest {
    private static final String ENDLESS = "{\"stream\":true,\"ignore_eos\":true,\"max_tokens\":100000,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}";
    private static final String SHORT = "{\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    private final AtomicLong skew = new AtomicLong();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void fullOfFinishedSessionsPushesOutTheOldestAndFullOfRunningOnesRefusesWith429() throws Exception {
        try (TestServer server = new TestServer(TestModels.tinyLlama(), new Engine.Config(2, 4096, 256, 2, 4), 60_000, 2,
                TestServer.api("tiny", null), () -> System.currentTimeMillis() + skew.get())) {
            HttpResponse<String> first = send(server, "/v1/chat/completions", SHORT);
            assertEquals(200, first.statusCode(), first.body());
            String aId = JsonParser.parseString(first.body()).getAsJsonObject().get("id").getAsString();
            assertEquals(1, sessions(server), "finished, steerable for the TTL");

            Iterator<String> b = stream(server);
            String bId = idAndFirstToken(b);
            Iterator<String> c = stream(server);      // the third: pushes out the finished one
            String cId = idAndFirstToken(c);
            assertEquals(2, sessions(server));
            HttpResponse<String> steerA = send(server, "/v1/chat/completions/" + aId + "/steer", "{\"at\":0,\"text\":\" x\"}");
            assertEquals(404, steerA.statusCode(), "pushed out: " + steerA.body());

            for (int i = 0; i < 3; i++) {             // both running: refused, and nothing opened for it
                HttpResponse<String> r = send(server, "/v1/chat/completions", SHORT);
                assertEquals(429, r.statusCode(), r.body());
                JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
                assertEquals("rate_limit_exceeded", e.get("type").getAsString());
                assertTrue(e.get("message").getAsString().contains("--max-sessions"), r.body());
                assertTrue(e.has("param") && e.has("code"), r.body());
                assertEquals(2, sessions(server));
                assertEquals(0, server.engine.stats().queued.get(), "nothing was queued for it");
            }

            assertEquals(200, send(server, "/v1/chat/completions/" + bId + "/stop", "").statusCode());
            drain(b);
            HttpResponse<String> again = send(server, "/v1/chat/completions", SHORT);  // pushes out the stopped one
            assertEquals(200, again.statusCode(), again.body());
            assertEquals(2, sessions(server));
            assertEquals(404, send(server, "/v1/chat/completions/" + bId + "/steer", "{\"at\":0,\"text\":\" x\"}").statusCode());

            assertEquals(200, send(server, "/v1/chat/completions/" + cId + "/stop", "").statusCode());
            drain(c);
            skew.addAndGet(61_000);                    // past the TTL: all finished, all gone
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
