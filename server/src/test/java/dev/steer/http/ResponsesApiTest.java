package dev.steer.http;

import static dev.steer.testing.TestServer.assertApiError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.steer.llama.LlamaModel;
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

/** POST /v1/responses over HTTP on the tiny model: the shapes, the event stream, history, steering, bad input. */
class ResponsesApiTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(model, "tiny", 2, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static JsonObject json(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static String text(JsonObject response) {
        return response.getAsJsonArray("output").get(0).getAsJsonObject().getAsJsonArray("content").get(0).getAsJsonObject()
                .get("text").getAsString();
    }

    /** The events of an SSE body: each {@code event:} line's type must be its data's type. */
    private static List<JsonObject> events(Iterator<String> lines, int upTo) {
        List<JsonObject> out = new ArrayList<>();
        String type = null;
        while (out.size() < upTo && lines.hasNext()) {
            String line = lines.next();
            if (line.startsWith("event: ")) {
                type = line.substring(7);
            } else if (line.startsWith("data: ")) {
                JsonObject e = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                assertEquals(type, e.get("type").getAsString(), line);
                out.add(e);
                if (type.equals("response.completed") || type.equals("response.incomplete") || type.equals("response.failed")) {
                    break;
                }
            }
        }
        return out;
    }

    private static Iterator<String> stream(String body) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/responses"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<java.util.stream.Stream<String>> r = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        assertEquals(200, r.statusCode());
        return r.body().iterator();
    }

    @Test
    void wholeResponseHasOpenAisShapeAndTheChatAnswer() throws Exception {
        JsonObject r = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"hello world\",\"instructions\":\"be brief\","
                + "\"max_output_tokens\":12,\"temperature\":0}"));
        assertTrue(r.get("id").getAsString().startsWith("resp_"));
        assertEquals("response", r.get("object").getAsString());
        assertEquals("be brief", r.get("instructions").getAsString());
        assertEquals(12, r.get("max_output_tokens").getAsInt());
        JsonObject msg = r.getAsJsonArray("output").get(0).getAsJsonObject();
        assertEquals("message", msg.get("type").getAsString());
        assertEquals("assistant", msg.get("role").getAsString());
        assertEquals("output_text", msg.getAsJsonArray("content").get(0).getAsJsonObject().get("type").getAsString());
        JsonObject usage = r.getAsJsonObject("usage");
        int out = usage.get("output_tokens").getAsInt();
        assertEquals(out == 12 ? "incomplete" : "completed", r.get("status").getAsString());
        assertEquals(usage.get("input_tokens").getAsInt() + out, usage.get("total_tokens").getAsInt());

        // the same request as a chat completion: the same prompt, the same greedy answer
        JsonObject c = json(server.post("/v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                + "{\"role\":\"user\",\"content\":\"hello world\"}],\"max_tokens\":12,\"temperature\":0}"));
        assertEquals(c.getAsJsonObject("usage").get("prompt_tokens").getAsInt(), usage.get("input_tokens").getAsInt());
        assertEquals(c.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message").get("content").getAsString(), text(r));

        // message-list input with text parts is the same prompt as the string
        JsonObject parts = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"instructions\":\"be brief\",\"input\":[{\"type\":\"message\","
                + "\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hello \"},{\"type\":\"input_text\",\"text\":\"world\"}]}],"
                + "\"max_output_tokens\":12,\"temperature\":0}"));
        assertEquals(text(r), text(parts));
    }

    @Test
    void streamSendsTheTypedEventsInOrderAndAgreesWithTheWholeResponse() throws Exception {
        String body = "{\"model\":\"tiny\",\"input\":\"the model\",\"max_output_tokens\":10,\"temperature\":0";
        JsonObject whole = json(server.post("/v1/responses", body + "}"));
        List<JsonObject> events = events(stream(body + ",\"stream\":true}"), Integer.MAX_VALUE);
        List<String> types = events.stream().map(e -> e.get("type").getAsString()).toList();
        assertEquals(List.of("response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"),
                types.subList(0, 4));
        assertEquals(List.of("response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"),
                types.subList(types.size() - 4, types.size()), "10 tokens of a random model: cut by max_output_tokens");
        for (int i = 0; i < events.size(); i++) {
            assertEquals(i, events.get(i).get("sequence_number").getAsInt());
        }
        StringBuilder deltas = new StringBuilder();
        events.stream().filter(e -> e.get("type").getAsString().equals("response.output_text.delta"))
                .forEach(e -> deltas.append(e.get("delta").getAsString()));
        assertEquals(text(whole), deltas.toString());
        assertEquals(text(whole), events.get(types.indexOf("response.output_text.done")).get("text").getAsString());
        JsonObject last = events.get(events.size() - 1).getAsJsonObject("response");
        assertEquals(events.get(0).getAsJsonObject("response").get("id").getAsString(), last.get("id").getAsString());
        assertEquals("max_output_tokens", last.getAsJsonObject("incomplete_details").get("reason").getAsString());
        assertEquals(10, last.getAsJsonObject("usage").get("output_tokens").getAsInt());
    }

    @Test
    void jsonSchemaFormatConstrainsTheAnswer() throws Exception {
        JsonObject r = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"judge\",\"max_output_tokens\":200,\"seed\":1,"
                + "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"v\",\"strict\":true,\"schema\":{\"type\":\"object\","
                + "\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"],\"additionalProperties\":false}}}}"));
        JsonObject parsed = JsonParser.parseString(text(r)).getAsJsonObject();
        assertTrue(parsed.get("ok").getAsJsonPrimitive().isBoolean(), text(r));
        assertEquals("json_schema", r.getAsJsonObject("text").getAsJsonObject("format").get("type").getAsString());
    }

    @Test
    void previousResponseIdMakesTheEarlierTurnTheHistory() throws Exception {
        JsonObject first = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"one\",\"instructions\":\"sys\",\"max_output_tokens\":5,\"temperature\":0}"));
        String id = first.get("id").getAsString();
        JsonObject second = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"two\",\"previous_response_id\":\"" + id
                + "\",\"max_output_tokens\":5,\"temperature\":0}"));
        assertEquals(id, second.get("previous_response_id").getAsString());
        // the prompt: the first input, its answer, the new input; the first instructions are not carried over
        JsonArray messages = new JsonArray();
        for (String[] m : new String[][] {{"user", "one"}, {"assistant", text(first)}, {"user", "two"}}) {
            JsonObject o = new JsonObject();
            o.addProperty("role", m[0]);
            o.addProperty("content", m[1]);
            messages.add(o);
        }
        JsonObject chat = json(server.post("/v1/chat/completions", "{\"model\":\"tiny\",\"messages\":" + messages + ",\"max_tokens\":5,\"temperature\":0}"));
        assertEquals(chat.getAsJsonObject("usage").get("prompt_tokens").getAsInt(), second.getAsJsonObject("usage").get("input_tokens").getAsInt());
        assertEquals(chat.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message").get("content").getAsString(), text(second));
        // and a chain: the third sees both turns
        JsonObject third = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"three\",\"previous_response_id\":\""
                + second.get("id").getAsString() + "\",\"max_output_tokens\":5,\"temperature\":0}"));
        assertTrue(third.getAsJsonObject("usage").get("input_tokens").getAsInt() > second.getAsJsonObject("usage").get("input_tokens").getAsInt()
                + second.getAsJsonObject("usage").get("output_tokens").getAsInt());
    }

    @Test
    void aStreamedResponseIsSteeredByItsIdAndRecordedWithItsMessages() throws Exception {
        Iterator<String> lines = stream("{\"model\":\"tiny\",\"input\":\"hello world\",\"max_output_tokens\":100000,\"ignore_eos\":true,"
                + "\"temperature\":0,\"stream\":true}");
        List<JsonObject> head = events(lines, 10);  // 4 opening events and 6 deltas
        String id = head.get(0).getAsJsonObject("response").get("id").getAsString();
        HttpResponse<String> ack = server.post("/v1/responses/" + id + "/steer", "{\"at\": 3, \"text\": \"the steer is in\", \"max_tokens\": 5}");
        assertEquals(200, ack.statusCode(), ack.body());
        List<JsonObject> rest = events(lines, Integer.MAX_VALUE);
        JsonObject steered = rest.stream().filter(e -> e.get("type").getAsString().equals("response.output_text.steered")).findFirst().orElseThrow();
        String content = steered.getAsJsonObject("steer").get("content").getAsString();
        assertTrue(content.endsWith("the steer is in"), content);
        StringBuilder after = new StringBuilder();
        boolean seen = false;
        for (JsonObject e : rest) {
            seen |= e == steered;
            if (seen && e.get("type").getAsString().equals("response.output_text.delta")) {
                after.append(e.get("delta").getAsString());
            }
        }
        JsonObject done = rest.stream().filter(e -> e.get("type").getAsString().equals("response.output_text.done")).findFirst().orElseThrow();
        assertEquals(content + after, done.get("text").getAsString());
        JsonObject end = rest.get(rest.size() - 1);
        assertEquals("response.incomplete", end.get("type").getAsString(), "the steer's max_tokens ran out");
        assertEquals(content + after, text(end.getAsJsonObject("response")));

        // recorded like any steer, with the chat messages the exports read
        String steerId = JsonParser.parseString(ack.body()).getAsJsonObject().get("id").getAsString();
        JsonObject record = json(server.get("/v1/steers/" + steerId));
        assertEquals(id, record.get("session_id").getAsString());
        assertEquals("hello world", record.getAsJsonObject("request").getAsJsonArray("messages").get(0).getAsJsonObject().get("content").getAsString());
        String export = server.get("/v1/steers/export?format=openai_sft&session_id=" + id).body();
        assertTrue(export.contains("hello world"), export);

        // after the end, the same steer endpoint continues it as a Responses stream under the same id
        HttpResponse<String> cont = server.post("/v1/chat/completions/" + id + "/steer", "{\"at\": 1, \"text\": \"q\", \"max_tokens\": 3}");
        assertEquals(200, cont.statusCode(), cont.body());
        List<JsonObject> again = events(cont.body().lines().iterator(), Integer.MAX_VALUE);
        assertEquals(id, again.get(0).getAsJsonObject("response").get("id").getAsString());
        assertTrue(again.stream().anyMatch(e -> e.get("type").getAsString().equals("response.output_text.steered")), cont.body());
        assertEquals("response.incomplete", again.get(again.size() - 1).get("type").getAsString());
        assertNotNull(again.get(again.size() - 1).getAsJsonObject("response").getAsJsonObject("usage"));
    }

    /**
     * The chat completion a Responses request becomes, as its session records it (and steer records and exports keep
     * it): every field it carries, in this order, the sampling fields exactly as the client wrote them, a JSON null in
     * the schema kept, the first instructions not carried over.
     */
    @Test
    void theRecordedChatBodyIsTheTranslationFieldForField() throws Exception {
        JsonObject first = json(server.post("/v1/responses", "{\"model\":\"tiny\",\"input\":\"one\",\"instructions\":\"sys\","
                + "\"max_output_tokens\":3,\"temperature\":0}"));
        String previous = first.get("id").getAsString();
        String schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]}";
        String sampling = "\"temperature\":0.0,\"top_p\":0.90,\"seed\":7,\"top_k\":5,\"min_p\":0.05,\"presence_penalty\":0.1,"
                + "\"frequency_penalty\":0.2,\"repeat_penalty\":1.1,\"repeat_last_n\":16,\"dry_multiplier\":0.5,\"dry_base\":1.5,"
                + "\"dry_allowed_length\":3,\"dry_penalty_last_n\":32,\"dry_sequence_breakers\":[\"\\n\"],\"ignore_eos\":false";
        JsonObject second = json(server.post("/v1/responses", "{\"stream\":false,\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
                + "\"input_text\",\"text\":\"two <b>\"},{\"type\":\"input_text\",\"text\":\" & more\"}]}],\"model\":\"tiny\","
                + "\"instructions\":\"be brief\",\"previous_response_id\":\"" + previous + "\",\"max_output_tokens\":4,\"unknown\":1,"
                + "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"a\",\"description\":null,\"strict\":true,\"schema\":" + schema
                + ",\"extra\":2}}," + sampling + "}"));
        String id = second.get("id").getAsString();
        HttpResponse<String> stop = server.post("/v1/responses/" + id + "/stop", "{}");
        assertEquals(200, stop.statusCode(), stop.body());
        JsonObject record = json(server.get("/v1/steers/" + JsonParser.parseString(stop.body()).getAsJsonObject().get("id").getAsString()));
        String answer = new JsonPrimitive(text(first)).toString();
        String expected = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                + "{\"role\":\"user\",\"content\":\"one\"},{\"role\":\"assistant\",\"content\":" + answer + "},"
                + "{\"role\":\"user\",\"content\":\"two <b> & more\"}],"
                + sampling + ",\"stream\":false,\"max_completion_tokens\":4,"
                + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"description\":null,\"strict\":true,"
                + "\"schema\":" + schema + "}},\"instructions\":\"be brief\",\"previous_response_id\":\"" + previous + "\"}";
        assertEquals(expected, record.get("request").toString());
    }

    @Test
    void badInputIsA400InOpenAisShape() throws Exception {
        String[][] cases = {
                {"{\"input\":\"x\",\"previous_response_id\":\"resp_nope\"}", "previous_response_id"},
                {"{\"input\":\"x\",\"previous_response_id\":\"chatcmpl-nope\"}", "previous_response_id"},
                {"{}", "input"},
                {"{\"input\":[]}", "input"},
                {"{\"input\":42}", "input"},
                {"{\"input\":[\"x\"]}", "input[0]"},
                {"{\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "input[0].role"},
                {"{\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}", "input[0].type"},
                {"{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"image_url\":\"x\"}]}]}", "input[0].content[0].type"},
                {"{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\"}]}]}", "input[0].content[0].text"},
                {"{\"input\":[{\"role\":\"user\",\"content\":{}}]}", "input[0].content"},
                {"{\"input\":\"x\",\"instructions\":7}", "instructions"},
                {"{\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens"},
                {"{\"input\":\"x\",\"temperature\":3}", "temperature"},
                {"{\"input\":\"x\",\"text\":\"json\"}", "text"},
                {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}", "text.format.type"},
                {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}", "text.format.schema"},
                // refused by the grammar limits (as on chat completions), and named by the field sent here
                {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\",\"schema\":{\"type\":\"string\",\"minLength\":5,\"maxLength\":1}}}}", "text.format.schema"},
                {"{\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}]}", "tools"},
        };
        for (String[] c : cases) {
            JsonObject e = assertApiError(server.post("/v1/responses", c[0]), 400);
            if (c[1] != null) {
                assertEquals(c[1], e.get("param").isJsonNull() ? null : e.get("param").getAsString(), c[0] + " -> " + e);
            }
        }
        assertApiError(server.post("/v1/responses", "{\"model\":\"gpt-4o\",\"input\":\"x\"}"), 404);
    }
}
