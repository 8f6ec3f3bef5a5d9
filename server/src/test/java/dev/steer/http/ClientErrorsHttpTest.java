package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Client errors that were 500s (issue 16, item 10): numbers with extreme exponents, grammars and schemas no output
 * can match, a malformed chunked body. Each is a 4xx in OpenAI's error shape, and the server answers normally after.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ClientErrorsHttpTest {
    private static TestServer server;
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private static String session;  // a finished chat completion, to steer and stop

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 2, null);
        HttpResponse<String> r = post("/v1/chat/completions", CHAT + ",\"max_tokens\":8}");
        assertEquals(200, r.statusCode(), r.body());
        session = JsonParser.parseString(r.body()).getAsJsonObject().get("id").getAsString();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static final String CHAT = "{\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]";
    private static final String TEXT = "{\"prompt\":\"hi\",\"max_tokens\":4";

    private static HttpResponse<String> post(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(server.base() + path)).timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** A 400 in OpenAI's shape naming {@code param}; returns the error object. */
    private static JsonObject assertInvalid(HttpResponse<String> r, String param) {
        assertEquals(400, r.statusCode(), r.body());
        JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
        assertEquals("invalid_request_error", e.get("type").getAsString(), r.body());
        assertTrue(e.has("message") && e.has("code"), r.body());
        assertEquals(param, e.get("param").isJsonNull() ? null : e.get("param").getAsString(), r.body());
        return e;
    }

    private static void assertAlive() throws Exception {
        HttpResponse<String> r = post("/v1/completions", TEXT + "}");
        assertEquals(200, r.statusCode(), r.body());
    }

    /** A route, a body with {@code %s} where the number goes, and the field the error must name. */
    private record Field(String route, String body, String param) {}

    private static List<Field> integerFields() {
        String steer = "/v1/chat/completions/" + session + "/steer";
        String stop = "/v1/chat/completions/" + session + "/stop";
        String job = "/v1/fine_tuning/jobs";
        return List.of(
                new Field("/v1/completions", TEXT + ",\"seed\":%s}", "seed"),
                new Field("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":%s}", "max_tokens"),
                new Field("/v1/completions", TEXT + ",\"logprobs\":%s}", "logprobs"),
                new Field("/v1/completions", TEXT + ",\"top_k\":%s}", "top_k"),
                new Field("/v1/chat/completions", CHAT + ",\"n\":%s}", "n"),
                new Field("/v1/chat/completions", CHAT + ",\"max_completion_tokens\":%s}", "max_completion_tokens"),
                new Field("/v1/chat/completions", CHAT + ",\"max_tokens\":4,\"repeat_last_n\":%s}", "repeat_last_n"),
                new Field("/v1/chat/completions", CHAT + ",\"max_tokens\":4,\"dry_allowed_length\":%s}", "dry_allowed_length"),
                new Field("/v1/completions", TEXT + ",\"dry_penalty_last_n\":%s}", "dry_penalty_last_n"),
                new Field("/v1/chat/completions", CHAT + ",\"max_tokens\":4,\"logprobs\":true,\"top_logprobs\":%s}", "top_logprobs"),
                new Field(steer, "{\"text\":\" x\",\"at\":%s}", "at"),
                new Field(steer, "{\"text\":\" x\",\"at\":1,\"max_tokens\":%s}", "max_tokens"),
                new Field(stop, "{\"at\":%s}", "at"),
                new Field(job, "{\"hyperparameters\":{\"n_epochs\":%s}}", "hyperparameters.n_epochs"),
                new Field(job, "{\"hyperparameters\":{\"seed\":%s}}", "hyperparameters.seed"),
                new Field(job, "{\"filters\":{\"since\":%s}}", "filters.since"));
    }

    @Test
    void numbersWithExtremeExponentsAreA400NamingTheField() throws Exception {
        for (Field f : integerFields()) {
            for (String n : List.of("1e-20000", "-1e-20000", "1.5e-99999", "1e99999", "-1e99999", "1e2147483648")) {
                JsonObject e = assertInvalid(post(f.route(), f.body().formatted(n)), f.param());
                assertTrue(e.get("message").getAsString().contains(f.param()), e.toString());
            }
        }
        assertEquals(0, server.server.jobs.list().size(), "no job was queued");
        assertAlive();
    }

    @Test
    void zeroWithAHugeExponentIsZero() throws Exception {
        // 0e99999 is exactly 0: accepted where 0 is allowed, refused by the field's range where it is not.
        assertEquals(200, post("/v1/completions", TEXT + ",\"seed\":0e99999}").statusCode());
        assertEquals(200, post("/v1/completions", TEXT + ",\"top_k\":-0E+99999}").statusCode());
        assertEquals(200, post("/v1/completions", TEXT + ",\"temperature\":1e-20000}").statusCode(), "a tiny number is a number");
        JsonObject e = assertInvalid(post("/v1/chat/completions", CHAT + ",\"n\":0e99999}"), "n");
        assertTrue(e.get("message").getAsString().contains("between 1 and"), e.toString());
        assertInvalid(post("/v1/completions", "{\"prompt\":\"hi\",\"max_tokens\":0e99999}"), "max_tokens");
        assertInvalid(post("/v1/fine_tuning/jobs", "{\"hyperparameters\":{\"lora_rank\":0e99999}}"), "hyperparameters.lora_rank");
        assertInvalid(post("/v1/completions", TEXT + ",\"temperature\":1e99999}"), "temperature");
        assertAlive();
    }

    /**
     * llama-server's DRY fields: out of their ranges a 400 naming the field; in range (a window as long as an int
     * goes, bounded by the model's context natively) an answer.
     */
    @Test
    void dryFieldsAreCheckedAndServed() throws Exception {
        assertInvalid(post("/v1/completions", TEXT + ",\"dry_multiplier\":-1}"), "dry_multiplier");
        assertInvalid(post("/v1/completions", TEXT + ",\"dry_base\":0.5}"), "dry_base");
        assertInvalid(post("/v1/completions", TEXT + ",\"dry_penalty_last_n\":-2}"), "dry_penalty_last_n");
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[]}"), "dry_sequence_breakers");
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[\"\"]}"), "dry_sequence_breakers");
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[1]}"), "dry_sequence_breakers");
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"),
                "dry_sequence_breakers");  // five: each costs a pass over the vocabulary
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[\"" + "\u00e9".repeat(21) + "\"]}"),
                "dry_sequence_breakers");  // 42 bytes
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"dry_sequence_breakers\":[\"a\\u0000b\"]}"), "dry_sequence_breakers");
        for (String route : List.of("/v1/completions", "/v1/chat/completions")) {
            HttpResponse<String> r = post(route, (route.endsWith("chat/completions") ? CHAT + ",\"max_tokens\":6" : TEXT)
                    + ",\"dry_multiplier\":0.8,\"dry_base\":1.75,\"dry_allowed_length\":2,\"dry_penalty_last_n\":2147483647,"
                    + "\"dry_sequence_breakers\":[\"\\n\",\":\"]}");
            assertEquals(200, r.statusCode(), r.body());
        }
        assertAlive();
    }

    @Test
    void aGrammarThatCanNeverMatchIsA400() throws Exception {
        assertInvalid(post("/v1/completions", TEXT + ",\"grammar\":\"root ::= [z-a]\"}"), "grammar");
        assertInvalid(post("/v1/chat/completions", CHAT + ",\"grammar\":\"root ::= \\\"a\\\" [z-a]\"}"), "grammar");
        assertAlive();
    }

    @Test
    void aSchemaThatCanNeverMatchIsA400() throws Exception {
        String format = ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":%s}}}";
        for (String schema : List.of(
                "{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}",
                "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}},\"required\":[\"n\"]}",
                "{\"type\":\"number\",\"minimum\":1e-20000,\"maximum\":-1}",
                "{\"type\":\"integer\",\"minimum\":0e99999,\"exclusiveMaximum\":1e-20000}",
                "{\"type\":\"number\",\"minimum\":1e99999}",
                "{\"type\":\"string\",\"minLength\":1e-20000}")) {
            HttpResponse<String> r = post("/v1/chat/completions", CHAT + format.formatted(schema));
            assertInvalid(r, "response_format.json_schema");
        }
        assertAlive();
    }

    @Test
    void aMalformedChunkedBodyIsA400() throws Exception {
        for (String route : List.of("/v1/completions", "/v1/chat/completions", "/v1/fine_tuning/jobs")) {
            String raw = "POST " + route + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n";
            String response = exchange(raw);
            assertTrue(response.startsWith("HTTP/1.1 400"), response);
            String body = response.substring(response.indexOf("\r\n\r\n") + 4);
            JsonObject e = JsonParser.parseString(body.substring(body.indexOf('{'), body.lastIndexOf('}') + 1)).getAsJsonObject()
                    .getAsJsonObject("error");
            assertEquals("invalid_request_error", e.get("type").getAsString(), response);
            assertTrue(e.has("param") && e.has("code") && e.has("message"), response);
        }
        assertAlive();
    }

    /** Sends raw bytes on a fresh connection and reads the whole response (bounded by a read timeout). */
    private static String exchange(String raw) throws Exception {
        try (Socket s = new Socket("127.0.0.1", server.server.port())) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write(raw.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            for (int n; (n = in.read(buf)) > 0; ) {
                got.write(buf, 0, n);
            }
            return got.toString(StandardCharsets.UTF_8);
        }
    }
}
