package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import org.junit.jupiter.api.Test;

class ChatTemplatesTest {
    private final LlamaModel model = TestModels.tinyLlama();

    private static JsonArray messages(String json) {
        return JsonParser.parseString(json).getAsJsonArray();
    }

    @Test
    void rendersTheModelsOwnTemplate() {
        assertEquals(TinyModels.CHATML_TEMPLATE, model.info().chatTemplate());
        try (ChatTemplates t = ChatTemplates.forModel(model, null)) {
            var r = t.render(ChatTemplates.Request.of(messages(
                    "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"héllo 😀\"}]")));
            assertEquals("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhéllo 😀<|im_end|>\n<|im_start|>assistant\n",
                    r.prompt());
            int[] tokens = model.tokenize(r.prompt(), true, true);
            assertEquals(TinyModels.tokenId("<|im_start|>"), tokens[1], "special tokens parsed from the rendered prompt");
        }
    }

    @Test
    void autoWithParallelCallsLetsTheLazyGrammarTakeSeveralCalls() {
        // a lazy grammar's root is its trigger rules: several calls need a trigger rule of their own
        JsonArray tools = messages("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]");
        try (ChatTemplates t = ChatTemplates.forModel(model, null)) {
            for (boolean parallel : new boolean[] {true, false}) {
                var r = t.render(new ChatTemplates.Request(messages("[{\"role\":\"user\",\"content\":\"hi\"}]"), true, false, null, null,
                        null, new ChatTemplates.Tools(tools, "auto", parallel)));
                assertTrue(r.grammarLazy());
                String root = r.grammar().lines().filter(l -> l.startsWith("root ::=")).findFirst().orElseThrow();
                assertEquals(parallel, root.contains("tool-calls"), root + "\n" + r.grammar());
            }
        }
    }

    @Test
    void continuesAFinalAssistantMessage() {
        try (ChatTemplates t = ChatTemplates.forModel(model, null)) {
            JsonArray m = messages("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"Hello, I am\"}]");
            var r = t.render(new ChatTemplates.Request(m, false, true, null, null, null));
            assertTrue(r.prompt().endsWith("<|im_start|>assistant\nHello, I am"), r.prompt());
        }
    }

    @Test
    void overrideTemplateReplacesTheModels() {
        try (ChatTemplates t = ChatTemplates.forModel(model, "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")) {
            var r = t.render(ChatTemplates.Request.of(messages("[{\"role\":\"user\",\"content\":\"x\"}]")));
            assertEquals("[user] x\n", r.prompt());
        }
    }

    @Test
    void jsonSchemaRequestYieldsAGrammar() {
        try (ChatTemplates t = ChatTemplates.forModel(model, null)) {
            var schema = JsonParser.parseString("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}");
            var r = t.render(new ChatTemplates.Request(messages("[{\"role\":\"user\",\"content\":\"x\"}]"), true, false, schema, null, null));
            assertTrue(r.grammar().contains("root ::="), r.grammar());
        }
    }
}
