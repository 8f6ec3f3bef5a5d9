package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A random-weight model under a grammar must still produce only grammatical output. */
class GrammarTest {
    private final LlamaModel model = TestModels.tinyLlama();

    private String generate(LlamaSampler.Params params, String prompt, int maxTokens) {
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(512));
             LlamaSampler sampler = LlamaSampler.create(model, params)) {
            List<Integer> out = Generate.run(ctx, sampler, model.tokenize(prompt, true, false), 0, maxTokens);
            assertTrue(model.isEndOfGeneration(out.get(out.size() - 1)), "the grammar ran to completion: " + out);
            return model.detokenize(Generate.toArray(out), false, false);
        }
    }

    @Test
    void gbnfOutputAlwaysMatchesTheGrammar() {
        String gbnf = """
                root ::= "{\\"ok\\": " bool ", \\"n\\": " digit digit? "}"
                bool ::= "true" | "false"
                digit ::= [0-9]
                """;
        for (long seed = 1; seed <= 8; seed++) {
            String text = generate(LlamaSampler.Params.sampling(1.5f, seed).withGrammar(gbnf), "hello", 64);
            assertTrue(text.matches("\\{\"ok\": (true|false), \"n\": [0-9][0-9]?}"), "seed " + seed + ": " + text);
            JsonObject o = JsonParser.parseString(text).getAsJsonObject();
            assertTrue(o.get("n").getAsInt() < 100);
        }
    }

    @Test
    void jsonSchemaOutputParsesAndValidates() {
        String schema = """
                {"type": "object",
                 "properties": {
                   "name": {"type": "string", "pattern": "^[a-z]{1,6}$"},
                   "count": {"type": "integer", "minimum": 0, "maximum": 99},
                   "color": {"enum": ["red", "green"]}
                 },
                 "required": ["name", "count", "color"],
                 "additionalProperties": false}
                """;
        String gbnf = Grammars.fromJsonSchema(schema);
        assertTrue(gbnf.contains("root ::="), gbnf);
        for (long seed = 1; seed <= 6; seed++) {
            String text = generate(LlamaSampler.Params.sampling(1.0f, seed).withGrammar(gbnf), "the", 160);
            JsonObject o = JsonParser.parseString(text).getAsJsonObject();
            assertEquals(3, o.size(), text);
            assertTrue(o.get("name").getAsString().matches("[a-z]{1,6}"), text);
            int count = o.get("count").getAsInt();
            assertTrue(count >= 0 && count <= 99, text);
            assertTrue(List.of("red", "green").contains(o.get("color").getAsString()), text);
        }
    }

    @Test
    void canAcceptAndAcceptFollowTheGrammar() {
        String gbnf = "root ::= \"ab\"";
        try (LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy().withGrammar(gbnf))) {
            int a = TinyModels.tokenId("a");
            int b = TinyModels.tokenId("b");
            assertTrue(s.canAccept(a));
            assertFalse(s.canAccept(b));
            assertFalse(s.canAccept(model.info().eos()), "not finished yet");
            s.accept(a);
            assertTrue(s.canAccept(b));
            LlamaSampler fork = s.copy();
            fork.accept(b);
            assertTrue(fork.canAccept(model.info().eos()), "finished: end of generation allowed");
            assertTrue(s.canAccept(b), "the original is unaffected by its copy");
            fork.close();
        }
    }

    @Test
    void lazyGrammarOnlyConstrainsAfterItsTrigger() {
        String gbnf = "root ::= \"x\"";
        LlamaSampler.Params p = LlamaSampler.Params.greedy().withLazyGrammar(gbnf, List.of(), new int[] {3});
        try (LlamaSampler s = LlamaSampler.create(model, p)) {
            int b = TinyModels.tokenId("b");
            assertTrue(s.canAccept(b), "before the trigger token anything goes");
        }
    }
}
