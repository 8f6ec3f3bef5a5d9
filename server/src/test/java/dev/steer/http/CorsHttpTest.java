package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.engine.Engine;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * With --cors, a page of an allowed origin reads every answer, errors included: a 401 or 413 without
 * Access-Control-Allow-Origin reaches the page as a bare network error, not as "Incorrect API key".
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CorsHttpTest {
    private static final String ORIGIN = "https://app.example";
    private static final String KEY = "cors-key-0123";
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private static HttpResponse<String> send(TestServer s, String method, String path, String origin, String key, String body)
            throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(s.base() + path)).timeout(Duration.ofSeconds(20))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Origin", origin);
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        if (method.equals("OPTIONS")) {
            b.header("Access-Control-Request-Method", "POST").header("Access-Control-Request-Headers", "authorization,content-type");
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static Optional<String> allowed(HttpResponse<String> r) {
        return r.headers().firstValue("Access-Control-Allow-Origin");
    }

    @Test
    void answersOfEveryKindCarryTheOriginForAnAllowedPage() throws Exception {
        ApiServer.Options api = new ApiServer.Options("127.0.0.1", 0, "tiny", KEY, List.of(ORIGIN), 64 * 1024, false);
        try (TestServer s = new TestServer(TestModels.tinyLlama(), new Engine.Config(1, 512, 128, 2, 4), 60_000, api,
                System::currentTimeMillis)) {
            HttpResponse<String> preflight = send(s, "OPTIONS", "/v1/chat/completions", ORIGIN, null, null);
            assertTrue(preflight.statusCode() < 300, preflight.statusCode() + " " + preflight.body());
            assertEquals(Optional.of(ORIGIN), allowed(preflight), "preflight");

            HttpResponse<String> ok = send(s, "GET", "/v1/models", ORIGIN, KEY, null);
            assertEquals(200, ok.statusCode(), ok.body());
            assertEquals(Optional.of(ORIGIN), allowed(ok), "200");

            HttpResponse<String> wrongKey = send(s, "GET", "/v1/models", ORIGIN, "wrong", null);
            assertEquals(401, wrongKey.statusCode(), wrongKey.body());
            assertEquals(Optional.of(ORIGIN), allowed(wrongKey), "401: " + wrongKey.headers().map());

            HttpResponse<String> tooLarge = send(s, "POST", "/v1/chat/completions", ORIGIN, KEY,
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "x".repeat(70_000) + "\"}]}");
            assertEquals(413, tooLarge.statusCode(), tooLarge.body());
            assertEquals(Optional.of(ORIGIN), allowed(tooLarge), "413: " + tooLarge.headers().map());

            HttpResponse<String> notFound = send(s, "POST", "/v1/steers/steer-unknown/tags", ORIGIN, KEY, "{\"tags\":[\"a\"]}");
            assertEquals(404, notFound.statusCode(), notFound.body());
            assertEquals(Optional.of(ORIGIN), allowed(notFound), "404");

            HttpResponse<String> stranger = send(s, "GET", "/v1/models", "https://elsewhere.example", KEY, null);
            assertEquals(Optional.empty(), allowed(stranger), "an origin not allowed gets no CORS header");
        }
    }
}
