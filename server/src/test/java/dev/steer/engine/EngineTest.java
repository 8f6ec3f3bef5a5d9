package dev.steer.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Every wait below is bounded (Collector.await, deadlines), and the class as a whole by @Timeout. */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class EngineTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private static Engine engine;

    @BeforeAll
    static void start() {
        engine = new Engine(model, new Engine.Config(4, 4096, 256, 2, 64));
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static GenerationRequest sampled(String prompt, long seed, int maxTokens) {
        return new GenerationRequest(model.tokenize(prompt, true, false), LlamaSampler.Params.sampling(1.0f, seed),
                maxTokens, List.of(), -1, true);
    }

    @Test
    void greedyOutputMatchesThePlainDecodeLoop() {
        TestModels.assumeCpuExactness();
        int[] prompt = model.tokenize("hello world, the model", true, false);
        List<Integer> expected;
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(512));
             LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            expected = Generate.run(ctx, s, prompt, 0, 30);
        }
        Collector c = new Collector();
        engine.submit(GenerationRequest.greedy(prompt, 30), c);
        Collector.Result r = c.await();
        assertEquals(expected, r.tokens());
        assertEquals(model.isEndOfGeneration(expected.get(expected.size() - 1)) ? FinishReason.STOP : FinishReason.LENGTH, r.reason());
        assertEquals(prompt.length, r.usage().promptTokens());
        assertEquals(expected.size(), r.usage().completionTokens());
    }

    /**
     * The output that a session reads (the generation's {@link GenerationOutput}) is the answer: a model that ends
     * itself reports its end-of-generation token to the listener, and the output leaves it out. A grammar that must
     * end after "ab" makes the random-weight model end.
     */
    @Test
    void theEndOfGenerationTokenIsReportedButIsNotOutput() {
        int[] prompt = model.tokenize("the", true, false);
        Collector c = new Collector();
        engine.submit(new GenerationRequest(prompt, LlamaSampler.Params.sampling(1.0f, 3).withGrammar("root ::= \"ab\""), 64,
                List.of(), -1, false), c);
        Collector.Result r = c.await();
        assertEquals(FinishReason.STOP, r.reason(), "the grammar ended the answer: " + r.tokens());
        int end = r.tokens().get(r.tokens().size() - 1);
        assertTrue(model.isEndOfGeneration(end));
        int[] answer = r.tokens().subList(0, r.tokens().size() - 1).stream().mapToInt(Integer::intValue).toArray();
        assertArrayEquals(answer, c.output().tokens());
        assertEquals("ab", model.detokenize(c.output().tokens(), false, false));
    }

    /**
     * The engine tells its load listeners when work arrives and when a generation ends (a training job gives serving
     * its cores back on the first, takes them again after the last), and {@link Engine#load} counts what runs or waits.
     */
    @Test
    void loadListenersHearOfEveryArrivalAndEveryEnd() throws InterruptedException {
        try (Engine own = new Engine(model, new Engine.Config(2, 1024, 64, 2, 8))) {
            java.util.List<Long> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
            own.onLoadChange(() -> seen.add(own.load()));
            own.onLoadChange(() -> { throw new IllegalStateException("a broken listener changes nothing"); });
            assertEquals(0, own.load());
            List<Collector> cs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Collector c = new Collector();
                own.submit(sampled("load " + i, i, 8), c);
                cs.add(c);
            }
            for (Collector c : cs) {
                assertEquals(8, c.await().tokens().size());
            }
            long deadline = System.nanoTime() + 10_000_000_000L;  // a slot is released just after its listener hears the end
            while ((own.load() != 0 || seen.size() < 6) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(0, own.load());
            assertTrue(seen.size() >= 6, "three arrivals and three ends: " + seen);
            assertTrue(seen.contains(0L), "the last end left nothing running or waiting: " + seen);
            assertTrue(seen.stream().anyMatch(n -> n > 0), "arrivals are counted: " + seen);
        }
    }

    @Test
    void eightConcurrentSeededGenerationsEqualTheSameRunOneAtATime() {
        TestModels.assumeCpuExactness();
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            requests.add(sampled("the steer " + "is in the model ".repeat(i % 3) + i, 100 + i, 24));
        }
        List<List<Integer>> alone = new ArrayList<>();
        for (GenerationRequest r : requests) {
            Collector c = new Collector();
            engine.submit(r, c);
            alone.add(c.await().tokens());
        }
        List<Collector> together = new ArrayList<>();
        for (GenerationRequest r : requests) {
            Collector c = new Collector();
            engine.submit(r, c);
            together.add(c);
        }
        for (int i = 0; i < 8; i++) {
            assertEquals(alone.get(i), together.get(i).await().tokens(), "request " + i);
            assertEquals(24, alone.get(i).size());
        }
    }

    @Test
    void aSharedPromptPrefixIsNotComputedTwice() {
        String system = "a token of the model is in the steer, and the world is in the token. ".repeat(3);
        int[] first = model.tokenize(system + "hello", true, false);
        int[] second = model.tokenize(system + "world", true, false);
        Collector a = new Collector();
        engine.submit(GenerationRequest.greedy(first, 4), a);
        a.await();
        long computedBefore = engine.stats().promptTokensComputed.get();
        Collector b = new Collector();
        engine.submit(GenerationRequest.greedy(second, 4), b);
        Usage u = b.await().usage();
        int shared = 0;
        while (first[shared] == second[shared]) {
            shared++;
        }
        assertEquals(shared, u.cachedTokens(), "the common prefix came from the cache");
        assertEquals(second.length - shared, engine.stats().promptTokensComputed.get() - computedBefore,
                "only the new suffix was computed");
    }

    @Test
    void cancelStopsAGenerationAndFreesItsSequence() throws InterruptedException {
        Collector c = new Collector();
        Generation g = engine.submit(sampled("the", 1, 100_000), c);
        Collector.waitFor("3 tokens", () -> c.eventCount() >= 3);
        g.cancel();
        Collector.Result r = c.await();
        assertEquals(FinishReason.CANCELLED, r.reason());
        assertTrue(r.tokens().size() < 1000, "stopped promptly after " + r.tokens().size() + " tokens");
        Collector.waitFor("the sequence to be freed", () -> engine.stats().active.get() == 0);
    }

    @Test
    void stopStringsEndTheOutputWithoutAppearingInIt() {
        int[] prompt = model.tokenize("hello", true, false);
        Collector full = new Collector();
        engine.submit(GenerationRequest.greedy(prompt, 40), full);
        String text = full.await().text();
        assertTrue(text.length() > 6, text);
        String stop = text.substring(text.length() / 2, text.length() / 2 + 3);
        Collector cut = new Collector();
        engine.submit(new GenerationRequest(prompt, LlamaSampler.Params.greedy(), 40, List.of(stop), -1, false), cut);
        Collector.Result r = cut.await();
        assertEquals(FinishReason.STOP, r.reason());
        assertEquals(text.substring(0, text.indexOf(stop)), r.text());
    }

    @Test
    void logprobsComeWithEachToken() {
        Collector c = new Collector();
        engine.submit(new GenerationRequest(model.tokenize("the", true, false), LlamaSampler.Params.greedy(), 5,
                List.of(), 3, true), c);
        for (TokenEvent e : c.await().events()) {
            assertEquals(3, e.top().size());
            assertEquals(e.top().tokens()[0], e.token(), "greedy takes the most likely token");
            assertEquals(e.top().logprobs()[0], e.logprob(), 1e-6);
        }
    }

    @Test
    void promptsLongerThanTheContextAndFullQueuesAreRefused() {
        int[] huge = new int[engine.contextPerSequence()];
        java.util.Arrays.fill(huge, 10);
        assertThrows(IllegalArgumentException.class, () -> engine.submit(GenerationRequest.greedy(huge, 1), new Collector()));
        try (Engine tiny = new Engine(model, new Engine.Config(1, 512, 64, 1, 1))) {
            List<Generation> running = new ArrayList<>();
            running.add(tiny.submit(sampled("the", 1, 100_000), new Collector()));
            int accepted = 1;
            try {
                for (int i = 0; i < 3; i++) {
                    running.add(tiny.submit(sampled("the", 1, 10), new Collector()));
                    accepted++;
                }
            } catch (QueueFullException e) {
                assertTrue(e.getMessage().contains("busy"));
            }
            assertTrue(accepted <= 2, "one running, at most one waiting");
            running.forEach(Generation::cancel);
        }
    }
}
