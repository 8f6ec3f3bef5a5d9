package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Engine;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16, item 5: a session keeps what steering needs, not the raw body: 60 requests padded with 8 MB of unknown
 * fields filled the heap for the TTL. And a full heap is not the client's malformed JSON: Gson wraps the
 * OutOfMemoryError it meets in a parse error, which was answered 400 "not valid JSON".
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SessionMemoryHttpTest {
    @Test
    void aSessionAndItsRecordsKeepTheKnownFieldsOnlyNotThePadding() throws Exception {
        ApiServer.Options o = TestServer.api("tiny", null);
        ApiServer.Options api = new ApiServer.Options(o.host(), o.port(), o.modelId(), null, o.corsOrigins(), 16 << 20, false);
        try (TestServer server = new TestServer(TestModels.tinyLlama(), new Engine.Config(1, 4096, 256, 2, 4), 60_000, api,
                System::currentTimeMillis)) {
            String pad = "p".repeat(2 << 20);
            HttpResponse<String> r = server.post("/v1/chat/completions", "{\"temperature\":0,\"max_tokens\":4,\"pad\":\"" + pad
                    + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\",\"pad\":\"" + pad + "\"}],\"seed\":7}");
            assertEquals(200, r.statusCode(), r.body());
            String id = JsonParser.parseString(r.body()).getAsJsonObject().get("id").getAsString();

            String kept = server.sessions.get(id).orElseThrow().requestJson;
            assertTrue(kept.length() < 1000, "the session keeps " + kept.length() + " characters of a 4 MB request");
            assertFalse(kept.contains("ppp"), kept);
            JsonObject request = JsonParser.parseString(kept).getAsJsonObject();
            assertEquals(7, request.get("seed").getAsInt(), "the parameters are kept");
            assertEquals(0.0, request.get("temperature").getAsDouble());
            assertEquals("{\"role\":\"user\",\"content\":\"hello\"}", request.getAsJsonArray("messages").get(0).toString());

            HttpResponse<String> stop = server.post("/v1/chat/completions/" + id + "/stop", "{\"at\": 1}");
            assertEquals(200, stop.statusCode(), stop.body());
            String steerId = JsonParser.parseString(stop.body()).getAsJsonObject().get("id").getAsString();
            JsonObject stored = JsonParser.parseString(server.get("/v1/steers/" + steerId).body()).getAsJsonObject();
            assertEquals(request, stored.getAsJsonObject("request"), "the record stores what the session kept");
        }
    }

    @Test
    void aHeapTooFullToParseABodyIsA503NotA400() throws Exception {
        // A JVM of its own with a small heap: an 8 MB body cannot be parsed there (Gson's buffer for the string
        // outgrows the heap), and a small one can right after.
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-Xmx40m", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                FullHeap.class.getName()).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child JVM ended");
        List<String> out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).lines().toList();
        assertEquals(0, p.exitValue(), String.join("\n", out));
        assertTrue(out.contains("large: 503 insufficient_memory"), String.join("\n", out));
        assertTrue(out.contains("small: parsed"), String.join("\n", out));
        assertTrue(out.contains("malformed: 400"), "a malformed body is still the client's 400: " + String.join("\n", out));
    }

    /** Runs in the child JVM. */
    static final class FullHeap {
        public static void main(String[] args) {
            String body = "{\"pad\":\"" + "x".repeat(12 << 20) + "\"}";
            try {
                RequestBody.parse(body);
                System.out.println("large: parsed (the heap was not full; the test proves nothing)");
            } catch (ApiError e) {
                System.out.println("large: " + e.status + " " + e.code);
            } catch (OutOfMemoryError e) {
                System.out.println("large: an OutOfMemoryError outside the parse, raised as is");
            }
            body = null;
            RequestBody.parse("{\"messages\":[]}");
            System.out.println("small: parsed");
            try {
                RequestBody.parse("{\"messages\":");
            } catch (ApiError e) {
                System.out.println("malformed: " + e.status);
            }
        }
    }
}
