package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Tool calls on chat completions, on the tiny test model (random weights, a ChatML template without tools: the
 * generic {@code <tool_call>} format). The grammar alone makes its calls valid, so these check what the server
 * promises whatever the model: a required call validates against its schema, a stream reassembles to the same call,
 * history with calls and results renders, bad input is a 400, and steers stay inside the grammar.
 */
class ToolCallsHttpTest {
    /** Bounded types only (enum, boolean): even random weights finish the call within max_tokens. */
    static final String PICK = "{\"type\":\"function\",\"function\":{\"name\":\"pick\",\"description\":\"Pick a color\","
            + "\"parameters\":{\"type\":\"object\",\"properties\":{\"color\":{\"type\":\"string\",\"enum\":[\"red\",\"green\",\"blue\"]},"
            + "\"bright\":{\"type\":\"boolean\"}},\"required\":[\"color\",\"bright\"],\"additionalProperties\":false}}}";
    static final String OTHER = "{\"type\":\"function\",\"function\":{\"name\":\"noop\",\"parameters\":{\"type\":\"object\","
            + "\"properties\":{},\"additionalProperties\":false}}}";

    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 2, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static String body(String messages, String extra) {
        return "{\"model\":\"tiny\",\"temperature\":0,\"max_tokens\":400,\"messages\":" + messages + ",\"tools\":[" + PICK + ","
                + OTHER + "]" + extra + "}";
    }

    static final String ASK = "[{\"role\":\"user\",\"content\":\"pick a color\"}]";

    static JsonObject json(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    static JsonObject choice(JsonObject completion) {
        return completion.getAsJsonArray("choices").get(0).getAsJsonObject();
    }

    /**
     * A small JSON Schema check for what these tests use (type object/string/boolean, enum, properties, required,
     * additionalProperties false): the failures, empty when {@code value} validates.
     */
    static List<String> violations(JsonObject schema, JsonElement value, String at) {
        List<String> out = new ArrayList<>();
        String type = schema.has("type") ? schema.get("type").getAsString() : null;
        if ("object".equals(type)) {
            if (!value.isJsonObject()) {
                return List.of(at + " is not an object");
            }
            JsonObject props = schema.has("properties") ? schema.getAsJsonObject("properties") : new JsonObject();
            if (schema.has("required")) {
                schema.getAsJsonArray("required").forEach(r -> {
                    if (!value.getAsJsonObject().has(r.getAsString())) {
                        out.add(at + " lacks " + r.getAsString());
                    }
                });
            }
            for (Map.Entry<String, JsonElement> e : value.getAsJsonObject().entrySet()) {
                if (props.has(e.getKey())) {
                    out.addAll(violations(props.getAsJsonObject(e.getKey()), e.getValue(), at + "." + e.getKey()));
                } else if (schema.has("additionalProperties") && !schema.get("additionalProperties").getAsBoolean()) {
                    out.add(at + " has " + e.getKey());
                }
            }
        } else if ("string".equals(type) && !(value.isJsonPrimitive() && value.getAsJsonPrimitive().isString())) {
            out.add(at + " is not a string");
        } else if ("boolean".equals(type) && !(value.isJsonPrimitive() && value.getAsJsonPrimitive().isBoolean())) {
            out.add(at + " is not a boolean");
        }
        if (schema.has("enum") && !schema.getAsJsonArray("enum").contains(value)) {
            out.add(at + " is not one of " + schema.get("enum"));
        }
        return out;
    }

    static final JsonObject PICK_SCHEMA = JsonParser.parseString(PICK).getAsJsonObject().getAsJsonObject("function").getAsJsonObject("parameters");

    /** The one call of a message, checked against pick's schema: its arguments. */
    static JsonObject validPickCall(JsonObject message) {
        JsonArray calls = message.getAsJsonArray("tool_calls");
        assertNotNull(calls, message.toString());
        assertEquals(1, calls.size(), message.toString());
        JsonObject call = calls.get(0).getAsJsonObject();
        assertTrue(call.get("id").getAsString().startsWith("call_"), call.toString());
        assertEquals("function", call.get("type").getAsString());
        assertEquals("pick", call.getAsJsonObject("function").get("name").getAsString());
        JsonElement args = JsonParser.parseString(call.getAsJsonObject("function").get("arguments").getAsString());
        assertEquals(List.of(), violations(PICK_SCHEMA, args, "arguments"));
        return args.getAsJsonObject();
    }

    @Test
    void aNamedFunctionIsCalledWithArgumentsThatValidate() throws Exception {
        JsonObject c = json(server.post("/v1/chat/completions",
                body(ASK, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"pick\"}}")));
        assertEquals("tool_calls", choice(c).get("finish_reason").getAsString(), c.toString());
        JsonObject message = choice(c).getAsJsonObject("message");
        assertTrue(message.get("content").isJsonNull(), message.toString());
        validPickCall(message);
    }

    @Test
    void requiredCallsATool() throws Exception {
        JsonObject c = json(server.post("/v1/chat/completions", body(ASK, ",\"tool_choice\":\"required\"")));
        assertEquals("tool_calls", choice(c).get("finish_reason").getAsString());
        JsonArray calls = choice(c).getAsJsonObject("message").getAsJsonArray("tool_calls");
        assertEquals(1, calls.size(), "parallel_tool_calls defaults to false: one call");
        String name = calls.get(0).getAsJsonObject().getAsJsonObject("function").get("name").getAsString();
        assertTrue(List.of("pick", "noop").contains(name), name);
    }

    @Test
    void everyOfNSeededChoicesCalls() throws Exception {
        // choices after the first are seeded again: the grammar's start (the generation prompt) must stay accepted
        JsonObject c = json(server.post("/v1/chat/completions", body(ASK, ",\"tool_choice\":\"required\",\"n\":2,\"seed\":7,\"temperature\":0.8")));
        assertEquals(2, c.getAsJsonArray("choices").size());
        for (JsonElement ch : c.getAsJsonArray("choices")) {
            assertEquals("tool_calls", ch.getAsJsonObject().get("finish_reason").getAsString(), ch.toString());
            assertEquals(1, ch.getAsJsonObject().getAsJsonObject("message").getAsJsonArray("tool_calls").size(), ch.toString());
        }
    }

    @Test
    void autoAndNoneAnswerWithoutError() throws Exception {
        for (String choice : List.of("", ",\"tool_choice\":\"auto\"", ",\"tool_choice\":\"none\"")) {
            JsonObject m = choice(json(server.post("/v1/chat/completions", body(ASK, choice)))).getAsJsonObject("message");
            assertEquals("assistant", m.get("role").getAsString());
            if (choice.contains("none")) {
                assertNull(m.get("tool_calls"), m.toString());
            }
            if (m.has("tool_calls")) {
                m.getAsJsonArray("tool_calls").forEach(t -> assertTrue(
                        JsonParser.parseString(t.getAsJsonObject().getAsJsonObject("function").get("arguments").getAsString()).isJsonObject()));
            }
        }
    }

    /** The chunks of a streamed completion ({@code data: {...}} lines). */
    static List<JsonObject> chunks(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().endsWith("data: [DONE]\n\n"), r.body());
        return r.body().lines().filter(l -> l.startsWith("data: {")).map(l -> JsonParser.parseString(l.substring(6)).getAsJsonObject()).toList();
    }

    @Test
    void aStreamedCallReassemblesToTheWholeOne() throws Exception {
        String named = ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"pick\"}}";
        JsonObject whole = validPickCall(choice(json(server.post("/v1/chat/completions", body(ASK, named)))).getAsJsonObject("message"));
        List<JsonObject> chunks = chunks(server.post("/v1/chat/completions", body(ASK, named + ",\"stream\":true")));
        StringBuilder args = new StringBuilder();
        String id = null;
        int announced = 0;
        String finish = null;
        for (JsonObject chunk : chunks) {
            for (JsonElement ch : chunk.getAsJsonArray("choices")) {
                JsonObject delta = ch.getAsJsonObject().getAsJsonObject("delta");
                if (!ch.getAsJsonObject().get("finish_reason").isJsonNull()) {
                    finish = ch.getAsJsonObject().get("finish_reason").getAsString();
                }
                if (!delta.has("tool_calls")) {
                    continue;
                }
                for (JsonElement t : delta.getAsJsonArray("tool_calls")) {
                    JsonObject call = t.getAsJsonObject();
                    assertEquals(0, call.get("index").getAsInt());
                    JsonObject fn = call.getAsJsonObject("function");
                    if (call.has("id")) {
                        // OpenAI's first delta of a call: index, id, type, name (and the arguments so far)
                        announced++;
                        id = call.get("id").getAsString();
                        assertEquals("function", call.get("type").getAsString());
                        assertEquals("pick", fn.get("name").getAsString());
                    } else {
                        assertFalse(call.has("type") || fn.has("name"), call.toString());  // later ones: fragments only
                    }
                    args.append(fn.get("arguments").getAsString());
                }
            }
        }
        assertEquals(1, announced);
        assertTrue(id.startsWith("call_"), id);
        assertEquals("tool_calls", finish);
        assertEquals(whole, JsonParser.parseString(args.toString()));
    }

    @Test
    void aToolResultInTheHistoryIsAnswered() throws Exception {
        String history = "[{\"role\":\"user\",\"content\":\"pick a color\"},"
                + "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                + "\"function\":{\"name\":\"pick\",\"arguments\":\"{\\\"color\\\": \\\"red\\\", \\\"bright\\\": true}\"}}]},"
                + "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"picked red\"}]";
        String req = body(history, ",\"tool_choice\":\"none\",\"max_tokens\":8");
        JsonObject c = json(server.post("/v1/chat/completions", req));
        assertFalse(choice(c).getAsJsonObject("message").get("content").getAsString().isEmpty());
        // The call and its result are in the prompt, as text the template renders: the prompt is longer than without them.
        JsonObject alone = json(server.post("/v1/chat/completions", body(ASK, ",\"tool_choice\":\"none\",\"max_tokens\":8")));
        assertTrue(c.getAsJsonObject("usage").get("prompt_tokens").getAsInt()
                > alone.getAsJsonObject("usage").get("prompt_tokens").getAsInt() + 10);
    }

    @Test
    void badToolInputIsA400() throws Exception {
        Map<String, String> cases = Map.of(
                "tool_choice", body(ASK, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"),
                "tools", "{\"model\":\"tiny\",\"messages\":" + ASK + ",\"tools\":{\"a\":1}}",
                "tools[0]", "{\"model\":\"tiny\",\"messages\":" + ASK + ",\"tools\":[{\"type\":\"retrieval\"}]}",
                "tools[0].function.parameters", "{\"model\":\"tiny\",\"messages\":" + ASK
                        + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[1]}}]}",
                "tools[0].function.name", "{\"model\":\"tiny\",\"messages\":" + ASK
                        + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"has space\"}}]}");
        for (Map.Entry<String, String> e : cases.entrySet()) {
            assertEquals(e.getKey(), TestServer.assertApiError(server.post("/v1/chat/completions", e.getValue()), 400).get("param").getAsString());
        }
        // A schema llama.cpp cannot turn into a grammar (an unknown type, a $ref to nowhere): 400 on 'tools', not 500.
        for (String params : List.of("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"strnig\"}}}",
                "{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/nope\"}}}")) {
            String b = "{\"model\":\"tiny\",\"messages\":" + ASK + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                    + params + "}}]}";
            assertEquals("tools", TestServer.assertApiError(server.post("/v1/chat/completions", b), 400).get("param").getAsString());
        }
        // tool_choice without tools; tools with a grammar of the client's own
        TestServer.assertApiError(server.post("/v1/chat/completions",
                "{\"model\":\"tiny\",\"messages\":" + ASK + ",\"tool_choice\":\"required\"}"), 400);
        TestServer.assertApiError(server.post("/v1/chat/completions", body(ASK, ",\"grammar\":\"root ::= \\\"x\\\"\"")), 400);
        // a named choice whose name is not a string; a schema the limits refuse (minimum above maximum: no value fits)
        assertEquals("tool_choice", TestServer.assertApiError(server.post("/v1/chat/completions",
                body(ASK, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":null}}")), 400).get("param").getAsString());
        assertEquals("tools[0].function.parameters", TestServer.assertApiError(server.post("/v1/chat/completions",
                "{\"model\":\"tiny\",\"messages\":" + ASK + ",\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\",\"function\":"
                        + "{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":5,"
                        + "\"maximum\":1}},\"required\":[\"n\"]}}}]}"), 400).get("param").getAsString());
        // history arguments nested 20,000 deep (a string, so Gson's own limit does not see it): refused before the
        // template's C++ side parses and writes them again (its JSON writer recurses per level)
        String deep = "[".repeat(20_000) + "]".repeat(20_000);
        assertEquals("messages[1].tool_calls", TestServer.assertApiError(server.post("/v1/chat/completions", body(
                "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":"
                        + "\"function\",\"function\":{\"name\":\"pick\",\"arguments\":\"" + deep + "\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
                        + "\"c\",\"content\":\"ok\"}]", "")), 400).get("param").getAsString());
        // a history call that is not one
        TestServer.assertApiError(server.post("/v1/chat/completions", body(
                "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_calls\":\"x\"}]", "")), 400);
    }

    @Test
    void steersOnACallStayInTheGrammarAndAreRecorded() throws Exception {
        String named = ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"pick\"}}";
        String id = json(server.post("/v1/chat/completions", body(ASK, named))).get("id").getAsString();
        // Prose where the grammar wants the call: the grammar refusal, and nothing recorded.
        JsonObject refused = TestServer.assertApiError(server.post("/v1/chat/completions/" + id + "/steer",
                "{\"at\":0,\"text\":\"Sure, here you go\"}"), 400);
        assertTrue(refused.get("message").getAsString().contains("grammar"), refused.toString());
        // A correction inside the call: accepted, and the continuation streams as tool_calls deltas.
        String correction = "<tool_call>\n{\"name\": \"pick\", \"arguments\": {\"color\": \"blue\"";
        HttpResponse<String> cont = server.post("/v1/chat/completions/" + id + "/steer",
                "{\"at\":0,\"text\":" + JsonParser.parseString("\"" + correction.replace("\"", "\\\"").replace("\n", "\\n") + "\"") + "}");
        List<JsonObject> chunks = chunks(cont);
        assertTrue(chunks.stream().anyMatch(c -> c.has("steer")), cont.body());
        StringBuilder args = new StringBuilder();
        String name = null;
        for (JsonObject c : chunks) {
            for (JsonElement ch : c.getAsJsonArray("choices")) {
                JsonObject delta = ch.getAsJsonObject().getAsJsonObject("delta");
                if (delta.has("tool_calls")) {
                    JsonObject fn = delta.getAsJsonArray("tool_calls").get(0).getAsJsonObject().getAsJsonObject("function");
                    if (fn.has("name")) {
                        name = fn.get("name").getAsString();
                    }
                    args.append(fn.get("arguments").getAsString());
                }
            }
        }
        assertEquals("pick", name);
        JsonElement parsed = JsonParser.parseString(args.toString());
        assertEquals(List.of(), violations(PICK_SCHEMA, parsed, "arguments"));
        assertEquals("blue", parsed.getAsJsonObject().get("color").getAsString());
        JsonArray steers = json(server.get("/v1/steers?session_id=" + id)).getAsJsonArray("data");
        assertEquals(1, steers.size(), steers.toString());
        JsonObject record = json(server.get("/v1/steers/" + steers.get(0).getAsJsonObject().get("id").getAsString()));
        assertTrue(record.toString().contains("\\\"tools\\\"") || record.toString().contains("\"tools\""), "the request keeps its tools");
    }
}
