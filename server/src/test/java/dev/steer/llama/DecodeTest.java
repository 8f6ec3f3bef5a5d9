package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class DecodeTest {
    private final LlamaModel model = TestModels.tinyLlama();
    private final LlamaContext.Params exact = LlamaContext.Params.defaults().withContextSize(1024).withSequences(4).exact();

    @Test
    void greedyGenerationIsDeterministic() {
        int[] prompt = model.tokenize("hello world, the", true, false);
        List<Integer> first;
        List<Integer> second;
        try (LlamaContext ctx = LlamaContext.create(model, exact);
             LlamaSampler s1 = LlamaSampler.create(model, LlamaSampler.Params.greedy());
             LlamaSampler s2 = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            first = Generate.run(ctx, s1, prompt, 0, 48);
            ctx.clear();
            second = Generate.run(ctx, s2, prompt, 0, 48);
        }
        assertTrue(first.size() >= 8, "generated " + first);
        assertEquals(first, second);
    }

    @Test
    void seededSamplingIsReproducibleAndSeedsDiffer() {
        int[] prompt = model.tokenize("the model", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, exact)) {
            List<List<Integer>> runs = new java.util.ArrayList<>();
            for (long seed : new long[] {7, 7, 8}) {
                ctx.clear();
                try (LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.sampling(1.0f, seed))) {
                    runs.add(Generate.run(ctx, s, prompt, 0, 32));
                }
            }
            assertEquals(runs.get(0), runs.get(1), "same seed, same tokens");
            assertNotEquals(runs.get(0), runs.get(2), "another seed, other tokens");
        }
    }

    @Test
    void presencePenaltyStopsRepeats() {
        int[] prompt = model.tokenize("the", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, exact);
             LlamaSampler plain = LlamaSampler.create(model, LlamaSampler.Params.greedy());
             LlamaSampler penalised = LlamaSampler.create(model, LlamaSampler.Params.greedy().withPenalties(64, 1f, 0f, 1000f))) {
            List<Integer> a = Generate.run(ctx, plain, prompt, 0, 40);
            ctx.clear();
            List<Integer> b = Generate.run(ctx, penalised, prompt, 0, 40);
            assertTrue(a.stream().distinct().count() < a.size(), "greedy on a random model repeats itself: " + a);
            assertEquals(b.size(), b.stream().distinct().count(), "with a huge presence penalty no token repeats: " + b);
        }
    }

    /**
     * DRY with a huge multiplier bans every token that would repeat a run longer than the allowed length: greedy on
     * a random model says some two tokens twice; with DRY (allowed length 1, a breaker it never writes) no two tokens
     * in a row occur twice, and the output starts as greedy's did until the first such repeat.
     */
    @Test
    void dryStopsRepeatedRuns() {
        int[] prompt = model.tokenize("the", true, false);
        LlamaSampler.Dry dry = new LlamaSampler.Dry(1000f, 1.75f, 1, 64, List.of("\u0007"));
        try (LlamaContext ctx = LlamaContext.create(model, exact);
             LlamaSampler plain = LlamaSampler.create(model, LlamaSampler.Params.greedy());
             LlamaSampler penalised = LlamaSampler.create(model, LlamaSampler.Params.greedy().withDry(dry))) {
            List<Integer> a = Generate.run(ctx, plain, prompt, 0, 48);
            ctx.clear();
            List<Integer> b = Generate.run(ctx, penalised, prompt, 0, 48);
            int firstRepeat = firstRepeatedPairEnd(a);
            assertTrue(firstRepeat >= 0, "greedy on a random model repeats two tokens: " + a);
            assertEquals(-1, firstRepeatedPairEnd(b), "with DRY no two tokens repeat: " + b);
            assertEquals(a.subList(0, firstRepeat), b.subList(0, firstRepeat), "the same until greedy's first repeat");
            assertNotEquals(a.get(firstRepeat), b.get(firstRepeat));
        }
    }

    /**
     * Greedy after penalties that only lower logits runs the chain on the logits at or above the (window + 1)-th
     * largest, not on the vocabulary; it must choose what the whole vocabulary gives. The reference: the same
     * penalties, then top-k 1 and a draw, a chain that always sees every token. DRY alone, penalties alone (window 8,
     * strong enough to move the choice), both, a presence penalty that bans every token said before and DRY every
     * pair (the choice then lies deep among the candidates: a cut at the top 2 fails here), and a negative presence
     * penalty (which raises logits: the whole vocabulary again), each over 48 tokens.
     */
    @Test
    void greedyAfterPenaltiesChoosesWhatTheWholeVocabularyGives() {
        int[] prompt = model.tokenize("the", true, false);
        LlamaSampler.Dry dry = new LlamaSampler.Dry(0.8f, 1.75f, 1, 16, List.of("\u0007"));
        List<LlamaSampler.Params> cases = List.of(
                LlamaSampler.Params.greedy().withDry(dry),
                LlamaSampler.Params.greedy().withPenalties(8, 1.5f, 0.5f, 0.5f),
                LlamaSampler.Params.greedy().withPenalties(8, 1.3f, 0f, 0.2f).withDry(dry),
                LlamaSampler.Params.greedy().withPenalties(64, 1f, 0f, 1000f),  // no token twice: the choice lies deep
                LlamaSampler.Params.greedy().withDry(new LlamaSampler.Dry(1000f, 1.75f, 1, 64, List.of("\u0007"))),
                LlamaSampler.Params.greedy().withPenalties(8, 1f, 0f, -1f));
        try (LlamaContext ctx = LlamaContext.create(model, exact)) {
            List<Integer> plain;
            try (LlamaSampler g = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
                plain = Generate.run(ctx, g, prompt, 0, 48);
            }
            for (LlamaSampler.Params greedy : cases) {
                LlamaSampler.Params topOne = new LlamaSampler.Params(1f, 1, 1f, 0f, greedy.penaltyLastN(), greedy.repeatPenalty(),
                        greedy.frequencyPenalty(), greedy.presencePenalty(), greedy.dry(), 7, null, List.of(), new int[0], null);
                List<Integer> a, b;
                ctx.clear();
                try (LlamaSampler s = LlamaSampler.create(model, greedy)) {
                    a = Generate.run(ctx, s, prompt, 0, 48);
                }
                ctx.clear();
                try (LlamaSampler s = LlamaSampler.create(model, topOne)) {
                    b = Generate.run(ctx, s, prompt, 0, 48);
                }
                assertEquals(b, a, greedy.toString());
                assertNotEquals(plain, a, "the penalties change the answer: " + greedy);
            }
        }
    }

    /** The index of the token that completes the first two tokens in a row seen twice, or -1. */
    private static int firstRepeatedPairEnd(List<Integer> t) {
        Set<List<Integer>> seen = new java.util.HashSet<>();
        for (int i = 1; i < t.size(); i++) {
            if (!seen.add(List.copyOf(t.subList(i - 1, i + 1)))) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void batchOfFourSequencesGivesTheSameLogitsAsEachAlone() {
        TestModels.assumeCpuExactness();
        String[] prompts = {"hello world", "the steer is in", "a token of the model", "it is"};
        float[][][] alone = new float[prompts.length][][];
        try (LlamaContext ctx = LlamaContext.create(model, exact)) {
            for (int s = 0; s < prompts.length; s++) {
                ctx.clear();
                alone[s] = decodeAll(ctx, List.of(model.tokenize(prompts[s], true, false)), s)[0];
            }
            ctx.clear();
            List<int[]> all = java.util.Arrays.stream(prompts).map(p -> model.tokenize(p, true, false)).toList();
            float[][][] together = decodeAll(ctx, all, -1);
            double maxDiff = 0;
            for (int s = 0; s < prompts.length; s++) {
                for (int i = 0; i < alone[s].length; i++) {
                    for (int v = 0; v < model.vocabSize(); v++) {
                        maxDiff = Math.max(maxDiff, Math.abs(alone[s][i][v] - together[s][i][v]));
                    }
                }
            }
            assertTrue(maxDiff < 1e-4, "batched vs alone max |diff| = " + maxDiff);

            // ... and continuing each sequence by one more token, all four in one batch, still matches.
            Batch b = ctx.newBatch();
            for (int s = 0; s < prompts.length; s++) {
                b.add(7 + s, all.get(s).length, s, true);
            }
            ctx.decode(b);
            for (int s = 0; s < prompts.length; s++) {
                assertEquals(all.get(s).length, ctx.lastPosition(s));
            }
        }
    }

    /**
     * Decodes each prompt into its own sequence (seq = list index), all in one batch when {@code onlySeq} is -1,
     * else only prompt 0 into sequence {@code onlySeq}. Returns logits[prompt][position][vocab].
     */
    private float[][][] decodeAll(LlamaContext ctx, List<int[]> prompts, int onlySeq) {
        Batch b = ctx.newBatch();
        int[][] index = new int[prompts.size()][];
        for (int p = 0; p < prompts.size(); p++) {
            int seq = onlySeq >= 0 ? onlySeq : p;
            index[p] = new int[prompts.get(p).length];
            for (int i = 0; i < prompts.get(p).length; i++) {
                index[p][i] = b.add(prompts.get(p)[i], i, seq, true);
            }
        }
        ctx.decode(b);
        float[][][] out = new float[prompts.size()][][];
        for (int p = 0; p < prompts.size(); p++) {
            out[p] = new float[index[p].length][];
            for (int i = 0; i < index[p].length; i++) {
                out[p][i] = ctx.logits(index[p][i]);
            }
        }
        return out;
    }

    /**
     * A context's CPU worker threads live as long as it: started with it (ggml would otherwise start new ones for
     * every decode, and where the scheduler puts them decides a step's speed; bench/README.md), the same ones through
     * many decodes, and stopped when it is closed. Counted by name: native threads take the name of the thread that
     * starts them, and this test starts them from a thread of its own.
     */
    @Test
    void aContextKeepsItsWorkerThreadsForItsLifeAndStopsThemWhenClosed() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc/self/task")),
                "threads are counted through Linux's /proc");
        String name = "pool-test-" + (System.nanoTime() % 1000);
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                assertEquals(0, threadsNamed(name));
                int[] prompt = model.tokenize("hello world, the", true, false);
                try (LlamaContext ctx = LlamaContext.create(model, exact.withThreads(4));
                     LlamaSampler s = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
                    Set<String> workers = threadIdsNamed(name);
                    assertEquals(3, workers.size(), "a pool of 4: this thread and 3 workers");
                    assertTrue(Generate.run(ctx, s, prompt, 0, 24).size() >= 8);
                    assertEquals(workers, threadIdsNamed(name), "the same workers after 24 decodes");
                }
                assertEquals(0, threadsNamed(name), "stopped with the context");
            } catch (Throwable e) {
                failed.set(e);
            }
        }, name);
        t.start();
        t.join(60_000);
        assertFalse(t.isAlive(), "bounded");
        if (failed.get() != null) {
            throw new AssertionError(failed.get());
        }
    }

    /** Ids of this process's threads named {@code name}, other than the Java thread of that name. */
    private static Set<String> threadIdsNamed(String name) throws IOException {
        Set<String> ids = new TreeSet<>();
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : tasks.toList()) {
                try {
                    if (Files.readString(task.resolve("comm")).strip().equals(name)) {
                        ids.add(task.getFileName().toString());
                    }
                } catch (IOException gone) {
                    // a thread that ended while listed
                }
            }
        }
        ids.remove(String.valueOf(currentTid()));
        return ids;
    }

    private static int threadsNamed(String name) throws IOException {
        return threadIdsNamed(name).size();
    }

    /** The calling thread's native id (/proc/thread-self). */
    private static long currentTid() throws IOException {
        return Long.parseLong(Path.of("/proc/thread-self").toRealPath().getFileName().toString());
    }

    @Test
    void removingTheTailOfASequenceLetsItContinueDifferently() {
        TestModels.assumeCpuExactness();
        int[] prompt = model.tokenize("hello world, the model is", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, exact)) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < prompt.length; i++) {
                b.add(prompt[i], i, 0, i == prompt.length - 1);
            }
            ctx.decode(b);
            float[] full = ctx.logits(b.size() - 1);
            // drop the last 3 positions, then decode the same 3 tokens again: same logits as before
            assertTrue(ctx.removeTokens(0, prompt.length - 3, -1));
            assertEquals(prompt.length - 4, ctx.lastPosition(0));
            b.clear();
            for (int i = prompt.length - 3; i < prompt.length; i++) {
                b.add(prompt[i], i, 0, i == prompt.length - 1);
            }
            ctx.decode(b);
            float[] again = ctx.logits(b.size() - 1);
            for (int v = 0; v < full.length; v++) {
                assertEquals(full[v], again[v], 1e-5f);
            }
            // a copy of the sequence continues exactly like the original
            ctx.copySequence(0, 1, -1, -1);
            assertEquals(ctx.lastPosition(0), ctx.lastPosition(1));
            ctx.keepOnly(1);
            assertEquals(-1, ctx.lastPosition(0));
            assertEquals(prompt.length - 1, ctx.lastPosition(1));
        }
    }

    /**
     * Greedy without penalties reads the argmax straight from the logits instead of llama.cpp's candidate array; it
     * must choose what llama.cpp's greedy sampler chooses (the first of the largest logits). The chain here is made
     * to run in full by a presence penalty too small to change any logit.
     */
    @Test
    void greedyReadsTheSameTokenAsLlamaCppsGreedyChain() {
        int[] prompt = model.tokenize("once upon a time", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, exact);
             LlamaSampler fast = LlamaSampler.create(model, LlamaSampler.Params.greedy());
             LlamaSampler chain = LlamaSampler.create(model,
                     LlamaSampler.Params.greedy().withPenalties(64, 1f, 0f, Float.MIN_VALUE))) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < prompt.length; i++) {
                b.add(prompt[i], i, 0, i == prompt.length - 1);
            }
            for (int step = 0; step < 32; step++) {
                ctx.decode(b);
                int last = b.size() - 1;
                float[] logits = ctx.logits(last);
                int first = 0;
                for (int i = 1; i < logits.length; i++) {
                    if (logits[i] > logits[first]) {
                        first = i;
                    }
                }
                int token = fast.sample(ctx, last);
                assertEquals(first, token, "step " + step);
                assertEquals(token, chain.sample(ctx, last), "step " + step);
                b.clear();
                b.add(token, prompt.length + step, 0, true);
            }
        }
    }

    @Test
    void topLogprobsAreSortedNormalisedAndMatchTheSampledToken() {
        int[] prompt = model.tokenize("the steer", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, exact);
             LlamaSampler greedy = LlamaSampler.create(model, LlamaSampler.Params.greedy())) {
            Batch b = ctx.newBatch();
            for (int i = 0; i < prompt.length; i++) {
                b.add(prompt[i], i, 0, i == prompt.length - 1);
            }
            ctx.decode(b);
            int last = b.size() - 1;
            TopLogprobs top = ctx.topLogprobs(last, 5);
            assertEquals(5, top.size());
            for (int i = 1; i < 5; i++) {
                assertTrue(top.logprobs()[i - 1] >= top.logprobs()[i]);
            }
            assertEquals(top.tokens()[0], greedy.sample(ctx, last), "greedy picks the most likely token");
            assertEquals(top.logprobs()[2], ctx.tokenLogprob(last, top.tokens()[2]), 1e-6);
            TopLogprobs all = ctx.topLogprobs(last, model.vocabSize());
            double total = 0;
            for (float lp : all.logprobs()) {
                total += Math.exp(lp);
            }
            assertEquals(1.0, total, 1e-4);
            assertFalse(Float.isNaN(all.logprobs()[all.size() - 1]));
        }
    }
}
