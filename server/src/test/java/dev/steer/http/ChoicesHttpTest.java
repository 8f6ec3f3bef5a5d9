package dev.steer.http;

import static dev.steer.testing.TestServer.assertApiError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Chat completions with n > 1: n choices of one prompt, each its own sequence and steerable session. */
class ChoicesHttpTest {
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 4, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static String body(int n, String extra) {
        return "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],\"n\":" + n + extra + "}";
    }

    private static JsonObject json(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static List<String> texts(JsonObject completion) {
        List<String> out = new ArrayList<>();
        JsonArray choices = completion.getAsJsonArray("choices");
        for (int i = 0; i < choices.size(); i++) {
            assertEquals(i, choices.get(i).getAsJsonObject().get("index").getAsInt());
            out.add(choices.get(i).getAsJsonObject().getAsJsonObject("message").get("content").getAsString());
        }
        return out;
    }

    /** The data lines of an SSE body, parsed, up to [DONE]. */
    private static List<JsonObject> chunks(Iterator<String> lines, int upTo) {
        List<JsonObject> out = new ArrayList<>();
        while (out.size() < upTo && lines.hasNext()) {
            String line = lines.next();
            if (line.equals("data: [DONE]")) {
                out.add(null);
                break;
            }
            if (line.startsWith("data: ")) {
                out.add(JsonParser.parseString(line.substring(6)).getAsJsonObject());
            }
        }
        return out;
    }

    @Test
    void seededChoicesDifferFromEachOtherAndRepeatExactly() throws Exception {
        String seeded = ",\"temperature\":1,\"seed\":7,\"max_tokens\":12";
        JsonObject a = json(server.post("/v1/chat/completions", body(3, seeded)));
        JsonObject b = json(server.post("/v1/chat/completions", body(3, seeded)));
        List<String> ta = texts(a);
        assertEquals(3, ta.size());
        assertEquals(ta, texts(b), "the same seed: the same three choices");
        assertNotEquals(ta.get(0), ta.get(1), "each choice its own seed");
        // choice 0 is what n = 1 gives with that seed
        assertEquals(ta.get(0), texts(json(server.post("/v1/chat/completions", body(1, seeded)))).get(0));
        // the prompt is counted once, the generated tokens of every choice
        JsonObject one = json(server.post("/v1/chat/completions", body(1, ",\"temperature\":0,\"max_tokens\":12,\"ignore_eos\":true")));
        JsonObject three = json(server.post("/v1/chat/completions", body(3, ",\"temperature\":0,\"max_tokens\":12,\"ignore_eos\":true")));
        assertEquals(one.getAsJsonObject("usage").get("prompt_tokens"), three.getAsJsonObject("usage").get("prompt_tokens"));
        assertEquals(36, three.getAsJsonObject("usage").get("completion_tokens").getAsInt());
    }

    @Test
    void streamedChoicesInterleaveByIndexAndMatchTheWholeAnswer() throws Exception {
        String seeded = ",\"temperature\":1,\"seed\":11,\"max_tokens\":16";
        List<String> whole = texts(json(server.post("/v1/chat/completions", body(2, seeded))));
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body(2, seeded + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"))).build();
        List<JsonObject> chunks = chunks(HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines()).body().iterator(), Integer.MAX_VALUE);
        assertEquals(null, chunks.get(chunks.size() - 1), "[DONE] once, at the end");
        StringBuilder[] text = {new StringBuilder(), new StringBuilder()};
        int[] finishes = new int[2];
        List<Integer> order = new ArrayList<>();
        JsonObject usage = null;
        for (JsonObject c : chunks.subList(0, chunks.size() - 1)) {
            if (c.getAsJsonArray("choices").isEmpty()) {
                usage = c.getAsJsonObject("usage");
                continue;
            }
            JsonObject choice = c.getAsJsonArray("choices").get(0).getAsJsonObject();
            int index = choice.get("index").getAsInt();
            order.add(index);
            if (choice.getAsJsonObject("delta").has("content")) {
                text[index].append(choice.getAsJsonObject("delta").get("content").getAsString());
            }
            if (!choice.get("finish_reason").isJsonNull()) {
                finishes[index]++;
            }
        }
        assertEquals(whole, List.of(text[0].toString(), text[1].toString()));
        assertEquals(1, finishes[0]);
        assertEquals(1, finishes[1]);
        assertTrue(order.subList(0, 2).equals(List.of(0, 1)), "a role chunk for each choice first: " + order);
        assertTrue(usage != null && usage.get("completion_tokens").getAsInt() > 16, "usage sums both choices: " + usage);
    }

    @Test
    void eachChoiceIsSteerableByItsIndex() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body(2, ",\"temperature\":0,\"ignore_eos\":true,\"max_tokens\":100000,\"stream\":true"))).build();
        Iterator<String> lines = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines()).body().iterator();
        String id = null;
        int ofChoice1 = 0;
        while (ofChoice1 < 3) {  // choice 1 has streamed (so it has started): it can be steered at 2
            JsonObject c = chunks(lines, 1).get(0);
            id = c.get("id").getAsString();
            JsonObject choice = c.getAsJsonArray("choices").get(0).getAsJsonObject();
            if (choice.get("index").getAsInt() == 1 && choice.getAsJsonObject("delta").has("content")
                    && !choice.getAsJsonObject("delta").get("content").getAsString().isEmpty()) {
                ofChoice1++;
            }
        }
        HttpResponse<String> ack = server.post("/v1/chat/completions/" + id + "/steer", "{\"index\": 1, \"at\": 2, \"text\": \"the steer\"}");
        assertEquals(200, ack.statusCode(), ack.body());
        JsonObject record = JsonParser.parseString(ack.body()).getAsJsonObject();
        assertEquals(id + "-1", record.get("session_id").getAsString());
        JsonObject steerChunk = null;
        for (int i = 0; i < 200 && steerChunk == null; i++) {
            for (JsonObject c : chunks(lines, 1)) {
                if (c != null && c.has("steer")) {
                    steerChunk = c;
                }
            }
        }
        assertTrue(steerChunk != null, "a steer chunk on the stream");
        assertEquals(1, steerChunk.getAsJsonObject("steer").get("index").getAsInt());
        assertEquals(200, server.post("/v1/chat/completions/" + id + "/stop", "{\"index\": 0}").statusCode());
        assertEquals(200, server.post("/v1/chat/completions/" + id + "/stop", "{\"index\": 1}").statusCode());
        assertApiError(server.post("/v1/chat/completions/" + id + "/steer", "{\"index\": 2, \"at\": 0, \"text\": \"x\"}"), 404);
    }

    @Test
    void nOutOfRangeIsA400() throws Exception {
        for (String n : List.of("0", "9", "-1", "1.5", "\"2\"")) {
            assertEquals("n", assertApiError(server.post("/v1/chat/completions", body(1, "").replace("\"n\":1", "\"n\":" + n)), 400)
                    .get("param").getAsString(), n);
        }
        assertEquals("n", assertApiError(server.post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"x\",\"n\":2}"), 400)
                .get("param").getAsString());
    }
}
