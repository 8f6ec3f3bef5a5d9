package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The API at the byte level: SSE framing, errors, concurrency, disconnects. */
public class HttpApiTest {
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 8, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static String chat(String content, String extra) {
        return "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]" + extra + "}";
    }

    private static final Pattern CHUNK = Pattern.compile(
            "data: \\{\"id\":\"(chatcmpl-[0-9a-f]{32})\",\"object\":\"chat\\.completion\\.chunk\",\"created\":(\\d+),"
            + "\"model\":\"tiny\",\"system_fingerprint\":\"steer\",\"choices\":\\[\\{\"index\":0,"
            + "\"delta\":(\\{[^\\n]*?\\}),\"logprobs\":null,\"finish_reason\":(null|\"stop\"|\"length\")\\}\\]\\}\n\n");

    @Test
    void sseFramingIsExactlyOpenAis() throws Exception {
        HttpResponse<String> r = server.post("/v1/chat/completions", chat("hello", ",\"stream\":true,\"temperature\":0,\"max_tokens\":12"));
        assertEquals(200, r.statusCode());
        assertEquals("text/event-stream;charset=utf-8", r.headers().firstValue("Content-Type").orElseThrow().replace(" ", "").toLowerCase());
        String body = r.body();
        assertTrue(body.endsWith("data: [DONE]\n\n"), body);
        Matcher m = CHUNK.matcher(body);
        int at = 0;
        String id = null;
        List<String> deltas = new ArrayList<>();
        List<String> finishes = new ArrayList<>();
        while (m.find() && m.start() == at) {
            id = id == null ? m.group(1) : id;
            assertEquals(id, m.group(1), "one id for every chunk");
            deltas.add(m.group(3));
            finishes.add(m.group(4));
            at = m.end();
        }
        assertEquals(body.length() - "data: [DONE]\n\n".length(), at, "nothing but chunks and [DONE]: " + body.substring(at));
        assertEquals("{\"role\":\"assistant\",\"content\":\"\"}", deltas.get(0), "the first chunk opens the message");
        assertEquals("{}", deltas.get(deltas.size() - 1), "the last chunk only finishes");
        assertTrue(List.of("stop", "length").contains(finishes.get(finishes.size() - 1).replace("\"", "")));
        for (int i = 1; i < deltas.size() - 1; i++) {
            assertTrue(deltas.get(i).startsWith("{\"content\":\""), deltas.get(i));
            assertEquals("null", finishes.get(i));
        }
        // the same request, not streamed, says the same
        HttpResponse<String> whole = server.post("/v1/chat/completions", chat("hello", ",\"temperature\":0,\"max_tokens\":12"));
        JsonObject o = JsonParser.parseString(whole.body()).getAsJsonObject();
        StringBuilder streamed = new StringBuilder();
        for (String d : deltas) {
            JsonObject delta = JsonParser.parseString(d).getAsJsonObject();
            if (delta.has("content")) {
                streamed.append(delta.get("content").getAsString());
            }
        }
        assertEquals(o.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message").get("content").getAsString(),
                streamed.toString());
    }

    @Test
    void eightParallelSeededStreamsEqualTheSameRequestsOneAtATime() throws Exception {
        TestModels.assumeCpuExactness();
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            bodies.add(chat("request number " + i, ",\"stream\":true,\"temperature\":1.0,\"seed\":" + (40 + i)
                    + ",\"max_tokens\":24,\"ignore_eos\":true"));
        }
        List<String> alone = new ArrayList<>();
        for (String b : bodies) {
            alone.add(streamedText(server.post("/v1/chat/completions", b).body()));
        }
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<String>> together = new ArrayList<>();
            for (String b : bodies) {
                together.add(pool.submit((Callable<String>) () -> streamedText(server.post("/v1/chat/completions", b).body())));
            }
            for (int i = 0; i < 8; i++) {
                assertEquals(alone.get(i), together.get(i).get(), "request " + i);
            }
        } finally {
            pool.shutdown();
        }
        assertTrue(alone.stream().distinct().count() > 1, "different seeds and prompts, different texts");
    }

    public static String streamedText(String sse) {
        StringBuilder out = new StringBuilder();
        for (String line : sse.split("\n")) {
            if (line.startsWith("data: {")) {
                JsonObject o = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                var choices = o.getAsJsonArray("choices");
                if (!choices.isEmpty()) {
                    var delta = choices.get(0).getAsJsonObject().getAsJsonObject("delta");
                    if (delta.has("content")) {
                        out.append(delta.get("content").getAsString());
                    }
                }
            }
        }
        return out.toString();
    }

    @Test
    void aClientThatDisconnectsStopsItsGeneration() throws Exception {
        long before = server.engine.stats().generatedTokens.get();
        String body = chat("go on forever", ",\"stream\":true,\"max_tokens\":1000000,\"ignore_eos\":true");
        try (Socket s = new Socket("127.0.0.1", server.server.port())) {
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            out.flush();
            InputStream in = s.getInputStream();
            int chunks = 0;
            StringBuilder seen = new StringBuilder();
            while (chunks < 5) {
                int c = in.read();
                assertTrue(c >= 0, "the stream runs until we leave");
                seen.append((char) c);
                if (seen.toString().endsWith("\n\n")) {
                    chunks++;
                }
            }
            assertTrue(server.engine.stats().active.get() >= 1);
        }
        for (int i = 0; i < 200 && server.engine.stats().active.get() > 0; i++) {
            Thread.sleep(10);
        }
        assertEquals(0, server.engine.stats().active.get(), "the sequence was freed");
        long after = server.engine.stats().generatedTokens.get();
        Thread.sleep(200);
        assertEquals(after, server.engine.stats().generatedTokens.get(), "and decoding stopped");
        assertTrue(after - before < 5000, "it was stopped early, after " + (after - before) + " tokens");
    }

    private static void assertError(HttpResponse<String> r, int status, String param) {
        assertEquals(status, r.statusCode(), r.body());
        JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
        assertTrue(e.has("message") && e.has("type") && e.has("param") && e.has("code"), r.body());
        if (param != null) {
            assertEquals(param, e.get("param").getAsString(), r.body());
        }
    }

    @Test
    void badRequestsGetOpenAiStyleErrorsAndNever500() throws Exception {
        assertError(server.post("/v1/chat/completions", "{not json"), 400, null);
        assertError(server.post("/v1/chat/completions", "[1,2]"), 400, null);
        assertError(server.post("/v1/chat/completions", "{\"model\":\"tiny\"}"), 400, "messages");
        assertError(server.post("/v1/chat/completions", "{\"messages\":[{\"content\":\"x\"}]}"), 400, "messages[0]");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"max_tokens\":\"ten\"")), 400, "max_tokens");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"max_tokens\":0")), 400, "max_tokens");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"temperature\":-1")), 400, "temperature");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"stream\":\"yes\"")), 400, "stream");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"stop\":[1,2]")), 400, "stop");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"top_logprobs\":3")), 400, "top_logprobs");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"grammar\":\"root ::= nope\"")), 400, "grammar");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"response_format\":{\"type\":\"xml\"}")), 400, "response_format.type");
        assertError(server.post("/v1/chat/completions", chat("x", ",\"response_format\":{\"type\":\"json_schema\"}")), 400, "response_format.json_schema");
        assertError(server.post("/v1/chat/completions", "{\"model\":\"other\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 404, "model");
        assertError(server.post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":42}"), 400, "prompt");
        assertError(server.post("/v1/chat/completions", chat("x".repeat(70_000), "")), 413, null);
        assertError(server.get("/v1/nothing-here"), 404, null);
        assertError(server.get("/v1/models/gpt-5"), 404, "model");
        // unknown fields are ignored, as OpenAI does
        assertEquals(200, server.post("/v1/chat/completions", chat("x", ",\"max_tokens\":2,\"frobnicate\":{\"a\":1}")).statusCode());
    }

    @Test
    void aTrailingAssistantMessageIsContinued() throws Exception {
        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello world\"}],"
                + "\"max_tokens\":3,\"temperature\":0}";
        JsonObject o = JsonParser.parseString(server.post("/v1/chat/completions", body).body()).getAsJsonObject();
        int prompt = o.getAsJsonObject("usage").get("prompt_tokens").getAsInt();
        int expected = TestModels.tinyLlama().tokenize("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello world", true, true).length;
        assertEquals(expected, prompt, "the prompt ends inside the assistant's message");
    }

    @Test
    void modelsHealthAndMetrics() throws Exception {
        JsonObject models = JsonParser.parseString(server.get("/v1/models").body()).getAsJsonObject();
        assertEquals("tiny", models.getAsJsonArray("data").get(0).getAsJsonObject().get("id").getAsString());
        assertEquals(200, server.get("/v1/models/tiny").statusCode());
        assertTrue(server.get("/health").body().contains("\"status\":\"ok\""));
        server.post("/v1/chat/completions", chat("count me", ",\"max_tokens\":3"));
        String metrics = server.get("/metrics").body();
        for (String name : List.of("steer_requests_total", "steer_prompt_tokens_total", "steer_generated_tokens_total",
                "steer_queue_depth", "steer_decode_tokens_per_second", "steer_kv_cache_usage_ratio")) {
            Matcher m = Pattern.compile("(?m)^" + name + " ([0-9.E]+)$").matcher(metrics);
            assertTrue(m.find(), name + " in\n" + metrics);
        }
        Matcher generated = Pattern.compile("(?m)^steer_generated_tokens_total (\\d+)$").matcher(metrics);
        assertTrue(generated.find() && Long.parseLong(generated.group(1)) > 0);
    }
}
