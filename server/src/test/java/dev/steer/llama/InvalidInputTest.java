package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Everything Java can hand the native layer wrongly must come back as an exception, never abort the JVM. Each test
 * ends by checking that the same model still generates (see {@link #modelStillWorks()}).
 */
class InvalidInputTest {
    private final LlamaModel model = TestModels.tinyLlama();

    @AfterEach
    void modelStillWorks() {
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(128));
             LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            assertFalse(Generate.run(ctx, s, model.tokenize("hello", true, false), 0, 4).isEmpty());
        }
    }

    @Test
    void missingModelFile() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> LlamaModel.load(Path.of("/nonexistent/model.gguf"), TestModels.params()));
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
    }

    @Test
    void corruptModelFiles() throws IOException {
        Path random = TestModels.dir().resolve("random-bytes.gguf");
        byte[] noise = new byte[4096];
        new Random(1).nextBytes(noise);
        Files.write(random, noise);
        var e = assertThrows(LlamaException.class, () -> LlamaModel.load(random, TestModels.params()));
        assertTrue(e.getMessage().contains("failed to load model"), e.getMessage());

        byte[] good = Files.readAllBytes(TestModels.tinyLlamaPath());
        for (int cut : new int[] {4, 64, good.length / 2, good.length - 8}) {
            Path truncated = TestModels.dir().resolve("truncated-" + cut + ".gguf");
            Files.write(truncated, Arrays.copyOf(good, cut));
            assertThrows(LlamaException.class, () -> LlamaModel.load(truncated, TestModels.params()), "cut at " + cut);
        }

        Path noWeights = new dev.steer.testing.GgufWriter().put("general.architecture", "llama").write(TestModels.dir().resolve("meta-only.gguf"));
        assertThrows(LlamaException.class, () -> LlamaModel.load(noWeights, TestModels.params()));
    }

    @Test
    void tokenIdsOutOfRange() {
        int n = model.vocabSize();
        assertThrows(IllegalArgumentException.class, () -> model.tokenBytes(n, false));
        assertThrows(IllegalArgumentException.class, () -> model.tokenBytes(-1, false));
        assertThrows(IllegalArgumentException.class, () -> model.detokenize(new int[] {5, n + 100}, false, false));
        assertThrows(IllegalArgumentException.class, () -> model.isEndOfGeneration(Integer.MAX_VALUE));
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(128))) {
            Batch b = ctx.newBatch();
            b.add(n, 0, 0, true);
            var e = assertThrows(IllegalArgumentException.class, () -> ctx.decode(b));
            assertTrue(e.getMessage().contains("out of range"), e.getMessage());
            assertEquals(-1, ctx.lastPosition(0), "nothing was decoded");
        }
    }

    @Test
    void contextOverflowAndBadSequences() {
        var p = LlamaContext.Params.defaults().withContextSize(64).withSequences(2).withBatchSize(32);
        try (LlamaContext ctx = LlamaContext.create(model, p)) {
            Batch b = ctx.newBatch();
            b.add(10, ctx.perSequenceContext(), 0, true);
            var e = assertThrows(IllegalArgumentException.class, () -> ctx.decode(b));
            assertTrue(e.getMessage().contains("context overflow"), e.getMessage());

            b.clear();
            b.add(10, 0, 2, true);
            assertThrows(IllegalArgumentException.class, () -> ctx.decode(b), "sequence 2 of 2");
            assertThrows(IllegalArgumentException.class, () -> ctx.removeTokens(5, 0, -1));
            assertThrows(IllegalArgumentException.class, () -> ctx.copySequence(0, 9, 0, -1));
            assertThrows(IllegalArgumentException.class, () -> ctx.lastPosition(-3));

            b.clear();
            assertThrows(IllegalArgumentException.class, () -> ctx.decode(b), "empty batch");

            // positions that skip ahead within a sequence are refused by llama.cpp itself
            b.add(10, 0, 0, false);
            b.add(11, 5, 0, true);
            assertThrows(LlamaException.class, () -> ctx.decode(b));

            // logits of an index that did not ask for them
            b.clear();
            b.add(10, 0, 1, false);
            b.add(11, 1, 1, true);
            ctx.decode(b);
            assertThrows(IllegalArgumentException.class, () -> ctx.logits(0));
            assertThrows(IllegalArgumentException.class, () -> ctx.logits(99));
            assertEquals(model.vocabSize(), ctx.logits(1).length);
        }
        assertThrows(IllegalArgumentException.class,
                () -> LlamaContext.create(model, LlamaContext.Params.defaults().withSequences(0)));
        assertThrows(IllegalArgumentException.class,
                () -> LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(0)));
    }

    @Test
    void fillingTheWholeKvCacheFailsCleanly() {
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(64).withBatchSize(64))) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < ctx.perSequenceContext(); i++) {
                b.add(10 + (i % 50), i, 0, i == ctx.perSequenceContext() - 1);
                if (b.size() == b.capacity() || i == ctx.perSequenceContext() - 1) {
                    ctx.decode(b);
                    b.clear();
                }
            }
            assertEquals(ctx.perSequenceContext() - 1, ctx.lastPosition(0), "the cache is full");
            b.add(10, ctx.perSequenceContext(), 0, true);
            assertThrows(IllegalArgumentException.class, () -> ctx.decode(b));
        }
    }

    @Test
    void invalidGrammars() {
        for (String bad : new String[] {"root ::= undefined-rule", "root ::= \"unterminated", "rot ::= \"a\"", "root ::= [a-"}) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> LlamaSampler.create(model, LlamaSampler.Params.greedy().withGrammar(bad)), bad);
            assertTrue(e.getMessage().contains("invalid grammar"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Grammars.fromJsonSchema("{not json"));
        assertThrows(IllegalArgumentException.class, () -> Grammars.fromJsonSchema("{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/nowhere\"}}}"));
    }

    @Test
    void invalidSamplerSettings() {
        assertThrows(IllegalArgumentException.class, () -> LlamaSampler.create(model, LlamaSampler.Params.sampling(-1f, 1)));
        assertThrows(IllegalArgumentException.class, () -> LlamaSampler.create(model, LlamaSampler.Params.sampling(Float.NaN, 1)));
        assertThrows(IllegalArgumentException.class,
                () -> LlamaSampler.create(model, LlamaSampler.Params.greedy().withPenalties(64, 0f, 0f, 0f)));
        try (LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy().withGrammar("root ::= \"a\""))) {
            assertThrows(IllegalArgumentException.class, () -> s.accept(model.info().eos()), "grammar not finished");
            assertThrows(IllegalArgumentException.class, () -> s.canAccept(-5));
        }
    }

    @Test
    void unknownOrBrokenAdapters() throws IOException {
        assertThrows(IllegalArgumentException.class, () -> LoraAdapter.load(model, Path.of("/nonexistent/adapter.gguf")));
        Path notAnAdapter = TestModels.tinyLlamaPath();  // a model, not an adapter
        assertThrows(LlamaException.class, () -> LoraAdapter.load(model, notAnAdapter));
        Path wrongShape = TinyModels.writeLoraAdapter(TestModels.dir().resolve("wrong-shape.gguf"),
                new TinyModels.Shape(32, 2, 4, 2, 64, 128), 4, 4f, 1);
        assertThrows(LlamaException.class, () -> LoraAdapter.load(model, wrongShape));
        Path garbage = TestModels.dir().resolve("garbage-adapter.gguf");
        Files.write(garbage, new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
        assertThrows(LlamaException.class, () -> LoraAdapter.load(model, garbage));
    }

    @Test
    void closedObjectsRefuseUse() {
        LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(64));
        LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy());
        assertThrows(IllegalStateException.class, model::close, "contexts and samplers still use the model");
        ctx.close();
        ctx.close();  // idempotent
        assertThrows(IllegalStateException.class, () -> ctx.decode(ctx.newBatch()));
        assertThrows(IllegalStateException.class, () -> s.sample(ctx, 0));
        s.close();
        assertThrows(IllegalStateException.class, () -> s.canAccept(1));
    }

    @Test
    void invalidChatRequests() {
        try (ChatTemplates t = ChatTemplates.forModel(model, null)) {
            assertThrows(IllegalArgumentException.class, () -> t.render(ChatTemplates.Request.of(new com.google.gson.JsonArray())));
            com.google.gson.JsonArray noRole = com.google.gson.JsonParser.parseString("[{\"content\": \"hi\"}]").getAsJsonArray();
            assertThrows(IllegalArgumentException.class, () -> t.render(ChatTemplates.Request.of(noRole)));
        }
        var e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplates.forModel(model, "{% for m in messages %}{{ m.content"));
        assertTrue(e.getMessage().startsWith("invalid chat template: "), e.getMessage());
    }
}
