package dev.steer.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class EngineSteerTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private static Engine engine;

    @BeforeAll
    static void start() {
        engine = new Engine(model, new Engine.Config(2, 2048, 256, 2, 8));
    }

    @AfterAll
    static void stop() {
        engine.close();
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    private static void waitFor(Collector c, int events) throws InterruptedException {
        while (c.eventCount() < events) {
            Thread.sleep(1);
        }
    }

    @Test
    void aSteerKeepsThePrefixDecodesOnlyTheCorrectionAndContinuesFromIt() throws Exception {
        int[] prompt = model.tokenize("hello world, the model is", true, false);
        int[] correction = model.tokenize(" the steer", false, false);
        Collector c = new Collector();
        Generation g = engine.submit(new GenerationRequest(prompt, LlamaSampler.Params.greedy(), 100_000, List.of(), -1, true), c);
        waitFor(c, 12);
        long computedBefore = engine.stats().promptTokensComputed.get();
        SteerEvent e = g.steer(5, correction, 10).get();
        long computed = engine.stats().promptTokensComputed.get() - computedBefore;
        Collector.Result r = c.await();

        assertEquals(5, e.at());
        assertTrue(e.rejected().length >= 12 - 5, "everything past the fork was rejected");
        assertArrayEquals(correction, e.correction());
        assertEquals(Engine.FORK_TOP, e.forkTop().size());
        assertEquals(e.rejected()[0], e.forkTop().tokens()[0], "greedy: the rejected token was the fork's top choice");
        assertEquals(correction.length + 1, computed, "only the fork token and the correction were computed, not the context");

        // the continuation is exactly what the model generates from prompt + accepted + correction
        int[] continuation = r.tokens().subList(r.tokens().size() - 10, r.tokens().size()).stream().mapToInt(Integer::intValue).toArray();
        Collector fresh = new Collector();
        engine.submit(new GenerationRequest(concat(prompt, e.accepted(), correction), LlamaSampler.Params.greedy(), 10, List.of(), -1, true), fresh);
        assertEquals(Arrays.stream(continuation).boxed().toList(), fresh.await().tokens());
        assertEquals(FinishReason.LENGTH, r.reason());
        assertEquals(List.of(e), r.steers());
    }

    @Test
    void steersInSequenceAndBadSteersChangeNothing() throws Exception {
        int[] prompt = model.tokenize("the", true, false);
        String gbnf = "root ::= [a-z ]+";
        Collector c = new Collector();
        Generation g = engine.submit(new GenerationRequest(prompt, LlamaSampler.Params.sampling(1f, 3).withGrammar(gbnf),
                100_000, List.of(), -1, true), c);
        waitFor(c, 8);
        int a = TinyModels.tokenId("a");
        int digit = TinyModels.tokenId("7");
        ExecutionException bad = assertThrows(ExecutionException.class, () -> g.steer(3, new int[] {digit}, 0).get());
        assertTrue(bad.getCause() instanceof IllegalArgumentException && bad.getCause().getMessage().contains("grammar"), bad.getCause().getMessage());
        ExecutionException far = assertThrows(ExecutionException.class, () -> g.steer(1_000_000, new int[] {a}, 0).get());
        assertTrue(far.getCause() instanceof IllegalArgumentException);

        SteerEvent first = g.steer(4, new int[] {a, a}, 0).get();
        waitFor(c, c.eventCount() + 5);
        SteerEvent second = g.steer(first.at() + 1, new int[] {a}, 6).get();
        assertEquals(first.at() + 1, second.accepted().length);
        assertEquals(a, second.accepted()[first.at()], "the first correction is now part of the output");
        Collector.Result r = c.await();
        assertEquals(2, r.steers().size());
        String after = r.text().substring(r.text().length() - 6);
        assertTrue(after.matches("[a-z ]+"), "sampling resumed inside the grammar: " + r.text());
        assertEquals(FinishReason.LENGTH, r.reason());
        assertThrows(ExecutionException.class, () -> g.steer(0, new int[] {a}, 0).get(), "finished: nothing to steer");
    }

    @Test
    void aFinishedGenerationIsContinuedAsANewOneThatReusesItsCache() throws Exception {
        int[] prompt = model.tokenize("a token of the model", true, false);
        Collector first = new Collector();
        engine.submit(new GenerationRequest(prompt, LlamaSampler.Params.greedy(), 12, List.of(), -1, true), first);
        List<Integer> out = first.await().tokens();
        int at = 6;
        int[] accepted = out.subList(0, at).stream().mapToInt(Integer::intValue).toArray();
        int[] rejected = out.subList(at, out.size()).stream().mapToInt(Integer::intValue).toArray();
        int[] correction = model.tokenize(" steer", false, false);
        long before = engine.stats().promptTokensComputed.get();
        Collector next = new Collector();
        engine.submit(new GenerationRequest(concat(prompt, accepted, correction), LlamaSampler.Params.greedy(), 5, List.of(), -1,
                true, prompt.length, new SteerEvent(at, accepted, rejected, correction, null), null), next);
        Collector.Result r = next.await();
        assertEquals(correction.length + 1, engine.stats().promptTokensComputed.get() - before, "the cached context was reused");
        assertEquals(1, r.steers().size());
        assertEquals(rejected[0], r.steers().get(0).forkTop().tokens()[0]);
        assertEquals(5, r.tokens().size());
        assertTrue(IntStream.of(accepted).boxed().toList().equals(out.subList(0, at)));
    }
}
