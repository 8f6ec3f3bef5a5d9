package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

class HealthTest {
    @Test
    void healthAnswersWithTheModelId() throws Exception {
        ApiServer server = ApiServer.start("127.0.0.1", 0, "tiny", TestModels.tinyLlama());
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/health")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode());
            assertTrue(r.body().contains("\"status\":\"ok\""), r.body());
            assertTrue(r.body().contains("\"model\":\"tiny\""), r.body());
        } finally {
            server.stop();
        }
    }
}
