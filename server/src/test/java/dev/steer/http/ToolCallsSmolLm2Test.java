package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * End to end on the default model, SmolLM2-135M-Instruct, whose own ChatML template knows no tools (the generic
 * format): with tool_choice "required" it calls the tool, with arguments that validate against the function's schema.
 */
class ToolCallsSmolLm2Test {
    static final String WEATHER = "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
            + "\"description\":\"Get the current weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{"
            + "\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]}},"
            + "\"required\":[\"city\",\"unit\"],\"additionalProperties\":false}}}";

    @Test
    void requiredGivesACallWhoseArgumentsValidate() throws Exception {
        Path smol = TestModels.smolLm2OrNull();
        Assumptions.assumeTrue(smol != null, "SmolLM2-135M-Instruct not available: run `bash models/fetch-smollm2.sh` (test.sh does)");
        JsonObject schema = JsonParser.parseString(WEATHER).getAsJsonObject().getAsJsonObject("function").getAsJsonObject("parameters");
        try (LlamaModel m = LlamaModel.load(smol, TestModels.params());
             TestServer s = new TestServer(m, "smol-sha", "smol", 2, null, Files.createTempDirectory("steer-smol-tools"))) {
            String body = "{\"model\":\"smol\",\"temperature\":0,\"max_tokens\":80,\"tool_choice\":\"required\",\"tools\":[" + WEATHER
                    + "],\"messages\":[{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}]}";
            HttpResponseJson c = HttpResponseJson.of(s.post("/v1/chat/completions", body));
            JsonObject choice = c.json.getAsJsonArray("choices").get(0).getAsJsonObject();
            assertEquals("tool_calls", choice.get("finish_reason").getAsString(), c.body);
            JsonArray calls = choice.getAsJsonObject("message").getAsJsonArray("tool_calls");
            assertEquals(1, calls.size(), c.body);
            JsonObject fn = calls.get(0).getAsJsonObject().getAsJsonObject("function");
            assertEquals("get_weather", fn.get("name").getAsString());
            JsonElement args = JsonParser.parseString(fn.get("arguments").getAsString());
            assertEquals(List.of(), ToolCallsHttpTest.violations(schema, args, "arguments"), c.body);
            assertTrue(!args.getAsJsonObject().get("city").getAsString().isEmpty(), c.body);
        }
    }

    /** A response's body and its JSON (200 asserted). */
    record HttpResponseJson(String body, JsonObject json) {
        static HttpResponseJson of(java.net.http.HttpResponse<String> r) {
            assertEquals(200, r.statusCode(), r.body());
            return new HttpResponseJson(r.body(), JsonParser.parseString(r.body()).getAsJsonObject());
        }
    }
}
