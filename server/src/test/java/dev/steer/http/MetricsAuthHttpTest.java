package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** With --api-key, /metrics needs the key too unless --public-metrics opens it (issue 16); /health stays open. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MetricsAuthHttpTest {
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private static HttpResponse<String> get(TestServer s, String path, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(s.base() + path)).timeout(Duration.ofSeconds(20));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static TestServer server(String key, boolean publicMetrics) {
        ApiServer.Options d = TestServer.api("tiny", key);
        return new TestServer(TestModels.tinyLlama(), new Engine.Config(1, 1024, 256, 2, 4), 60_000,
                new ApiServer.Options(d.host(), d.port(), d.modelId(), key, d.corsOrigins(), d.maxRequestBytes(), publicMetrics),
                System::currentTimeMillis);
    }

    @Test
    void metricsNeedTheKeyWhenOneIsSet() throws Exception {
        try (TestServer s = server("s3cret", false)) {
            for (String wrong : new String[] {null, "nope"}) {
                HttpResponse<String> r = get(s, "/metrics", wrong);
                assertEquals(401, r.statusCode(), r.body());
                JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
                assertEquals("invalid_api_key", e.get("code").getAsString());
                assertTrue(e.has("type") && e.has("param") && e.has("message"), r.body());
            }
            HttpResponse<String> ok = get(s, "/metrics", "s3cret");
            assertEquals(200, ok.statusCode());
            assertTrue(ok.body().contains("steer_requests_total"), ok.body());
            assertEquals(200, get(s, "/health", null).statusCode(), "liveness stays open");
        }
    }

    @Test
    void publicMetricsOpensOnlyMetrics() throws Exception {
        try (TestServer s = server("s3cret", true)) {
            assertEquals(200, get(s, "/metrics", null).statusCode());
            assertEquals(401, get(s, "/v1/models", null).statusCode(), "the API still needs the key");
        }
        try (TestServer s = server(null, false)) {
            assertEquals(200, get(s, "/metrics", null).statusCode(), "no key set: nothing to check");
        }
    }
}
