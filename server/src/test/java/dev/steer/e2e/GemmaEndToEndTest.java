package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The real Gemma 3 270M (Q4_K_M), fetched by models/fetch-gemma3-270m.sh: loads, templates, and answers. */
class GemmaEndToEndTest {
    private static LlamaModel model;

    @BeforeAll
    static void load() {
        Path path = TestModels.gemmaOrNull();
        String why = "Gemma 3 270M not available: run `bash models/fetch-gemma3-270m.sh` and set STEER_TEST_GEMMA "
                + "to the path it prints (test.sh does both)";
        if (path == null) {
            System.err.println("SKIPPED GemmaEndToEndTest: " + why);
        }
        Assumptions.assumeTrue(path != null, why);
        model = LlamaModel.load(path, TestModels.params());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    /**
     * This GGUF is the pretrained (not instruction-tuned) 270M and carries no chat template, so Steer applies
     * Gemma's own (templates/gemma.jinja). A pretrained model needs one example turn to answer in kind.
     */
    @Test
    void answersInItsChatTemplate() {
        assertEquals("gemma3", model.info().architecture());
        assertEquals(262144, model.info().vocabSize());
        try (ChatTemplates t = ChatTemplates.forModel(model, null);
             LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(1024));
             LlamaSampler greedy = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            var messages = JsonParser.parseString("""
                    [{"role": "user", "content": "What is the capital of Italy?"},
                     {"role": "assistant", "content": "The capital of Italy is Rome."},
                     {"role": "user", "content": "What is the capital of France?"}]""").getAsJsonArray();
            String prompt = t.render(ChatTemplates.Request.of(messages)).prompt();
            assertTrue(prompt.endsWith("<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"), prompt);
            int[] tokens = model.tokenize(prompt, true, true);
            assertEquals(model.info().bos(), tokens[0]);
            assertEquals(1, java.util.Arrays.stream(tokens).filter(x -> x == model.info().bos()).count(), "one BOS, not two");

            List<Integer> out = Generate.run(ctx, greedy, tokens, 0, 24);
            String answer = model.detokenize(Generate.toArray(out), true, false);
            System.err.println("Gemma 3 270M answered: " + answer);
            assertTrue(answer.startsWith("The capital of France is Paris."), answer);
        }
    }

    @Test
    void streamsAChatAnswerAndAnswersToAJsonSchemaOverHttp() throws Exception {
        try (TestServer server = new TestServer(model, "gemma", 2, null)) {
            String fewShot = "[{\"role\": \"user\", \"content\": \"What is the capital of Italy?\"},"
                    + "{\"role\": \"assistant\", \"content\": \"The capital of Italy is Rome.\"},"
                    + "{\"role\": \"user\", \"content\": \"What is the capital of France?\"}]";
            var r = server.post("/v1/chat/completions", "{\"model\":\"gemma\",\"stream\":true,\"temperature\":0,"
                    + "\"max_tokens\":10,\"messages\":" + fewShot + "}");
            assertEquals(200, r.statusCode());
            assertTrue(r.body().endsWith("data: [DONE]\n\n"));
            String streamed = dev.steer.http.HttpApiTest.streamedText(r.body());
            System.err.println("Gemma 3 270M streamed: " + streamed);
            assertTrue(streamed.startsWith("The capital of France is Paris."), streamed);

            String schema = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":40},"
                    + "\"country\":{\"type\":\"string\",\"maxLength\":40}},\"required\":[\"city\",\"country\"],"
                    + "\"additionalProperties\":false}";
            var j = server.post("/v1/chat/completions", "{\"model\":\"gemma\",\"temperature\":0,\"max_tokens\":60,"
                    + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"place\",\"strict\":true,\"schema\":" + schema + "}},"
                    + "\"messages\":[{\"role\":\"user\",\"content\":\"Name the capital of France and its country as JSON.\"}]}");
            assertEquals(200, j.statusCode(), j.body());
            String content = JsonParser.parseString(j.body()).getAsJsonObject().getAsJsonArray("choices").get(0)
                    .getAsJsonObject().getAsJsonObject("message").get("content").getAsString();
            System.err.println("Gemma 3 270M json_schema: " + content);
            var o = JsonParser.parseString(content).getAsJsonObject();
            assertEquals(java.util.Set.of("city", "country"), o.keySet());
            assertTrue(o.get("city").getAsString().length() <= 40 && o.get("country").getAsString().length() <= 40);
        }
    }
}
