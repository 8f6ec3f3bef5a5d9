package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The work budget inside llama.cpp's grammar matcher (native/patches/0006): a grammar ambiguous in a way
 * {@link GrammarLimits} does not measure fails the one operation, in bounded time, instead of holding the thread for
 * good. The grammars here are built to pass llama.cpp's parser and to blow up its matcher; {@link GrammarLimits}
 * refuses them before they reach a server's llama.cpp, so they go through {@code createUnchecked}.
 */
@Timeout(120)
class GrammarBudgetTest {
    private final LlamaModel model = TestModels.tinyLlama();

    /**
     * {@code levels} rules, each a sequence of 16 references to the next, the last an optional "a": every rule may be
     * empty, so the parse positions one character can reach are 16^levels (the matcher expands each one).
     */
    private static String nestedOptionals(String root, int levels) {
        StringBuilder b = new StringBuilder("root ::= ").append(root).append("\n");
        for (int i = 1; i < levels; i++) {
            b.append("r").append(i).append(" ::= ").append(String.join(" ", Collections.nCopies(16, "r" + (i + 1)))).append('\n');
        }
        b.append("r").append(levels).append(" ::= \"a\"?\n");
        return b.toString();
    }

    @Test
    void aGrammarTooAmbiguousToBuildIsAnInvalidGrammar() {
        // 16^6 = 16.7M parse positions at the start: without the budget, minutes and gigabytes before the first token
        String gbnf = nestedOptionals(String.join(" ", Collections.nCopies(16, "r1")), 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaSampler.createUnchecked(model, LlamaSampler.Params.greedy().withGrammar(gbnf)).close());
        assertTrue(e.getMessage().contains("work budget"), e.getMessage());
    }

    @Test
    void aTokenThatMakesTheGrammarExplodeFailsThatStepAndOthersGoOn() {
        // cheap to build (the start is one "x"), then the same explosion as above once an "x" is matched
        String gbnf = nestedOptionals("\"x\" " + String.join(" ", Collections.nCopies(16, "r1")), 6);
        int x = TinyModels.tokenId("x");
        try (LlamaSampler s = LlamaSampler.createUnchecked(model, LlamaSampler.Params.greedy().withGrammar(gbnf))) {
            // filtering a step's candidates matches the "x" and expands what may follow it; so does accepting it
            LlamaException filtering = assertThrows(LlamaException.class, () -> s.canAccept(x));
            assertTrue(filtering.getMessage().contains("work budget"), filtering.getMessage());
            LlamaException accepting = assertThrows(LlamaException.class, () -> s.accept(x));
            assertTrue(accepting.getMessage().contains("work budget"), accepting.getMessage());
        }
        // the budget is per operation: the next grammar, on the same thread, is matched as usual
        try (LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy().withGrammar("root ::= \"x\" \"a\"?"))) {
            s.accept(x);
            assertTrue(s.canAccept(TinyModels.tokenId("a")));
            assertTrue(s.canAccept(model.info().eos()));
            assertEquals(false, s.canAccept(TinyModels.tokenId("b")));
        }
    }

    @Test
    void aStarOfSomethingThatMayBeEmptyRuns() {
        // llama.cpp's tool-call grammars say (tool-call? space)+: the loop rule x* makes ends with itself, so the
        // parse stack does not grow, and expanding it comes back to a stack already seen (llama_grammar_advance_stack)
        String gbnf = "root ::= (\"a\"? \"c\"?)+ \"b\"";
        int a = TinyModels.tokenId("a"), c = TinyModels.tokenId("c"), b = TinyModels.tokenId("b");
        try (LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy().withGrammar(gbnf))) {
            for (int t : new int[] {a, c, c, a, a}) {
                assertTrue(s.canAccept(t));
                s.accept(t);
            }
            assertEquals(false, s.canAccept(model.info().eos()), "not before the b");
            s.accept(b);
            assertTrue(s.canAccept(model.info().eos()));
            assertEquals(false, s.canAccept(a), "nothing after the b");
        }
    }

    @Test
    void theIssuesThreeHundredOptionalItemsFailTheStepOnARealVocabulary() {
        // issue 16's reproduction 2: on SmolLM2's 49k vocabulary (tokens of many spaces and letters) this grammar held
        // the decode thread for good; GrammarLimits refuses it over HTTP (16 optional items in a row at most)
        Path smol = TestModels.smolLm2OrNull();
        Assumptions.assumeTrue(smol != null, "SmolLM2 not fetched: run `bash models/fetch-smollm2.sh` (test.sh does)");
        String gbnf = "root ::= " + String.join(" ", Collections.nCopies(300, "\"a\"?"));
        try (LlamaModel smolLm2 = LlamaModel.load(smol, TestModels.params());
             LlamaContext ctx = LlamaContext.create(smolLm2, LlamaContext.Params.defaults().withContextSize(256));
             LlamaSampler s = LlamaSampler.createUnchecked(smolLm2, LlamaSampler.Params.greedy().withGrammar(gbnf))) {
            LlamaException e = assertThrows(LlamaException.class,
                    () -> Generate.run(ctx, s, smolLm2.tokenize("Say a", true, false), 0, 8));
            assertTrue(e.getMessage().contains("work budget"), e.getMessage());
        }
    }

    @Test
    void grammarsWithinTheLimitsStayWithinTheBudgetOnARealVocabulary() {
        // what GrammarLimits lets through must not meet the budget: every real schema, and the most optional items
        // in a row it allows, sampled on SmolLM2's 49k vocabulary
        Path smol = TestModels.smolLm2OrNull();
        Assumptions.assumeTrue(smol != null, "SmolLM2 not fetched: run `bash models/fetch-smollm2.sh` (test.sh does)");
        List<String> grammars = new ArrayList<>();
        for (String schema : GrammarLimitsTest.realJsonSchemas()) {
            grammars.add(Grammars.fromJsonSchema(schema));
        }
        grammars.add("root ::= " + String.join(" ", Collections.nCopies(GrammarLimits.MAX_OPTIONAL_RUN, "\" \"?")) + " [a-z]+");
        try (LlamaModel smolLm2 = LlamaModel.load(smol, TestModels.params());
             LlamaContext ctx = LlamaContext.create(smolLm2, LlamaContext.Params.defaults().withContextSize(256))) {
            int[] prompt = smolLm2.tokenize("Answer in JSON:", true, false);
            for (String gbnf : grammars) {
                try (LlamaSampler s = LlamaSampler.create(smolLm2, LlamaSampler.Params.sampling(1.0f, 1).withGrammar(gbnf))) {
                    ctx.removeTokens(0, -1, -1);
                    assertDoesNotThrow(() -> Generate.run(ctx, s, prompt, 0, 24), () -> gbnf.length() > 300 ? gbnf.substring(0, 300) : gbnf);
                }
            }
        }
    }
}
