package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Collections;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Untrusted grammars and schemas (issue 16): each reproduction is a 400 in OpenAI's error shape naming the limit, and
 * the server answers a normal completion right after (it neither crashed nor wedged). Every wait is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class GrammarLimitsHttpTest {
    private static TestServer server;
    private static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void start() {
        server = new TestServer(TestModels.tinyLlama(), "tiny", 2, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static HttpResponse<String> post(String path, JsonObject body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(server.base() + path)).timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static JsonObject completion(String grammar) {
        JsonObject o = new JsonObject();
        o.addProperty("prompt", "hi");
        o.addProperty("max_tokens", 16);
        if (grammar != null) {
            o.addProperty("grammar", grammar);
        }
        return o;
    }

    private static JsonObject chat(String responseFormat) {
        JsonObject o = JsonParser.parseString("{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}], \"max_tokens\": 16}")
                .getAsJsonObject();
        if (responseFormat != null) {
            o.add("response_format", JsonParser.parseString(responseFormat));
        }
        return o;
    }

    private static JsonObject jsonSchema(String schema) {
        return chat("{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": " + schema + "}}");
    }

    /** A 400 in OpenAI's shape with this param and code; returns the message. */
    private static String assertRefused(HttpResponse<String> r, String param, String code) {
        assertEquals(400, r.statusCode(), r.body());
        JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
        assertEquals("invalid_request_error", e.get("type").getAsString(), r.body());
        assertEquals(param, e.get("param").isJsonNull() ? null : e.get("param").getAsString(), r.body());
        assertEquals(code, e.get("code").isJsonNull() ? null : e.get("code").getAsString(), r.body());
        String message = e.get("message").getAsString();
        assertTrue(message.contains("limit") || message.contains("never match") || message.contains("below its minimum")
                || message.contains("greater than"), message);
        return message;
    }

    /** The server still answers, promptly: a plain completion, a chat, and one under a grammar. */
    private static void assertAlive() throws Exception {
        HttpResponse<String> text = post("/v1/completions", completion(null));
        assertEquals(200, text.statusCode(), text.body());
        HttpResponse<String> c = post("/v1/chat/completions", chat(null));
        assertEquals(200, c.statusCode(), c.body());
        HttpResponse<String> g = post("/v1/completions", completion("root ::= [a-z]{1,8}"));
        assertEquals(200, g.statusCode(), g.body());
        String out = JsonParser.parseString(g.body()).getAsJsonObject().getAsJsonArray("choices").get(0).getAsJsonObject()
                .get("text").getAsString();
        assertTrue(out.matches("[a-z]{1,8}"), out);
    }

    // Repro 1. llama.cpp's parser recurses per nested group and crashed at 3,000 levels (SIGSEGV), and its
    // left-recursion check per link of a 10,000-rule chain. A request of that size is never sent here: without the
    // limits it would kill the test JVM. These depths are over the limits but under what crashes llama.cpp, so with
    // the limits gone this test fails instead of crashing (GrammarLimitsTest covers the crashing sizes).

    @Test
    void deeplyNestedGroupsAreA400() throws Exception {
        int depth = 500;
        assertRefused(post("/v1/completions", completion("root ::= " + "(".repeat(depth) + "\"a\"" + ")".repeat(depth))),
                "grammar", "grammar_too_deep");
        assertAlive();
    }

    @Test
    void aLongChainOfRulesIsA400() throws Exception {
        StringBuilder g = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 2000; i++) {
            g.append('r').append(i).append(" ::= r").append(i + 1).append('\n');
        }
        g.append("r2000 ::= \"a\"\n");
        assertRefused(post("/v1/completions", completion(g.toString())), "grammar", "grammar_too_deep");
        assertAlive();
    }

    // Repro 2. 300 optional items in a row: llama.cpp's token masking explores every split of a token over them,
    // the decode thread never comes back and every later request times out.

    @Test
    void threeHundredOptionalItemsAreA400AndDecodingGoesOn() throws Exception {
        String grammar = "root ::= " + String.join(" ", Collections.nCopies(300, "\"a\"?"));
        JsonObject attack = completion(grammar);
        attack.addProperty("max_tokens", 300);
        attack.addProperty("ignore_eos", true);  // keep sampling under the grammar
        assertRefused(post("/v1/completions", attack), "grammar", "grammar_too_many_optional_items");
        assertRefused(post("/v1/chat/completions", withGrammar(chat(null), grammar)), "grammar", "grammar_too_many_optional_items");
        assertAlive();
    }

    private static JsonObject withGrammar(JsonObject body, String grammar) {
        body.addProperty("grammar", grammar);
        return body;
    }

    // Repro 3. A repetition whose maximum is below its minimum: llama.cpp's unsigned max - min underflows and it
    // allocates rules until memory runs out. A standard json_schema produces one.

    @Test
    void aRepetitionWithItsMaximumBelowItsMinimumIsA400() throws Exception {
        assertRefused(post("/v1/completions", completion("root ::= \"a\"{5,2}")), "grammar", "grammar_invalid_repetition");
        assertAlive();
    }

    @Test
    void aJsonSchemaWithMinLengthAboveMaxLengthIsA400() throws Exception {
        String message = assertRefused(post("/v1/chat/completions",
                jsonSchema("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 1}")),
                "response_format.json_schema", "schema_unsatisfiable");
        assertTrue(message.contains("minLength 5") && message.contains("maxLength 1"), message);
        assertRefused(post("/v1/chat/completions", jsonSchema("{\"type\": \"object\", \"properties\": {\"tags\": {\"type\": \"array\","
                        + " \"items\": {\"type\": \"string\"}, \"minItems\": 4, \"maxItems\": 2}}}")),
                "response_format.json_schema", "schema_unsatisfiable");
        assertAlive();
    }

    // Item 10. Grammars and schemas that can never match were a 500 ("the grammar allows no token here").

    @Test
    void anEmptyCharacterRangeIsA400NotA500() throws Exception {
        assertRefused(post("/v1/completions", completion("root ::= [z-a]")), "grammar", "grammar_invalid_char_range");
        assertAlive();
    }

    @Test
    void anIntegerWithMinimumAboveMaximumIsA400NotA500() throws Exception {
        String message = assertRefused(post("/v1/chat/completions", jsonSchema("{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 1}")),
                "response_format.json_schema", "schema_unsatisfiable");
        assertTrue(message.contains("minimum 5") && message.contains("maximum 1"), message);
        assertAlive();
    }

    // And what must keep working.

    @Test
    void ordinaryGrammarsAndSchemasStillWork() throws Exception {
        HttpResponse<String> r = post("/v1/chat/completions", jsonSchema("{\"type\": \"object\", \"properties\": {\"n\": {\"type\":"
                + " \"integer\", \"minimum\": 0, \"maximum\": 9}}, \"required\": [\"n\"], \"additionalProperties\": false}"));
        assertEquals(200, r.statusCode(), r.body());
        HttpResponse<String> t = post("/v1/completions", completion("root ::= \"a\"? \"b\"? \"c\"{0,3} (\"x\" | \"y\")+"));
        assertEquals(200, t.statusCode(), t.body());
        HttpResponse<String> o = post("/v1/chat/completions", chat("{\"type\": \"json_object\"}"));
        assertEquals(200, o.statusCode(), o.body());
    }
}
