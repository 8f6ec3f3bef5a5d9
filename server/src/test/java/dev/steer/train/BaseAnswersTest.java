package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The base model's answers to the built-in prompts: generated once, the same as generating them again; a job that asks
 * while the server's preparation generates them waits for those.
 */
class BaseAnswersTest {
    @TempDir
    Path dir;

    @Test
    void keptAnswersAreTheEnginesAndOnlyNewPromptsAreGenerated() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        try (Engine engine = new Engine(model, new Engine.Config(2, 512, 64, 1, 1));
             AdapterRegistry registry = AdapterRegistry.open(dir.resolve("steers.db"), dir.resolve("adapters"))) {
            ServedAdapters served = new ServedAdapters(engine, registry, "tiny", "tiny-sha");
            try {
                keptAnswers(new Greedy(engine, served));
            } finally {
                served.closeAll();
            }
        }
    }

    private static void keptAnswers(Greedy greedy) {
        List<List<int[]>> asked = new ArrayList<>();
        BaseAnswers kept = new BaseAnswers((m, prompts, n) -> {
            asked.add(prompts);
            return greedy.answers(m, prompts, n);
        });
        int[] a = {1, 5, 9}, b = {1, 7}, c = {1, 2, 3, 4};
        List<int[]> first = kept.answers("tiny@base", List.of(a, b), 6);
        List<int[]> fresh = greedy.answers("tiny@base", List.of(a, b, c), 6);
        assertFalse(Arrays.equals(fresh.get(0), fresh.get(1)) || Arrays.equals(fresh.get(1), fresh.get(2))
                || Arrays.equals(fresh.get(0), fresh.get(2)), "three different answers, so that a mix-up shows");
        assertArrayEquals(fresh.get(0), first.get(0));
        assertArrayEquals(fresh.get(1), first.get(1));
        assertEquals(1, asked.size());

        List<int[]> second = kept.answers("tiny@base", List.of(c, a, b, c), 6);
        assertEquals(2, asked.size());
        assertEquals(1, asked.get(1).size(), "only the prompt not kept yet, once");
        assertArrayEquals(c, asked.get(1).get(0));
        assertArrayEquals(fresh.get(2), second.get(0));
        assertArrayEquals(fresh.get(0), second.get(1));
        assertArrayEquals(fresh.get(1), second.get(2));
        assertArrayEquals(fresh.get(2), second.get(3));

        second.get(1)[0] = -1;  // a caller's copy: what is kept stays as generated
        assertArrayEquals(fresh.get(0), kept.answers("tiny@base", List.of(a), 6).get(0));
        assertEquals(2, asked.size(), "everything kept: nothing generated");

        kept.answers("tiny@base", List.of(a), 3);  // another length is another answer
        assertEquals(3, asked.size());
    }

    @Test
    void aFailedAnswerIsNotKept() {
        List<Integer> calls = new ArrayList<>();
        BaseAnswers kept = new BaseAnswers((m, prompts, n) -> {
            calls.add(prompts.size());
            if (calls.size() == 1) {
                throw new IllegalStateException("generation failed: the engine is closed");
            }
            return prompts.stream().map(p -> new int[] {p.length}).toList();
        });
        assertThrows(IllegalStateException.class, () -> kept.answers("m", List.of(new int[] {1, 2}), 4));
        assertArrayEquals(new int[] {2}, kept.answers("m", List.of(new int[] {1, 2}), 4).get(0), "asked again after the failure");
        assertEquals(List.of(1, 1), calls);
    }

    @Test
    @Timeout(60)
    void aJobThatAsksWhileThePreparationGeneratesWaitsAndGeneratesNothing() throws Exception {
        CountDownLatch generating = new CountDownLatch(1), release = new CountDownLatch(1);
        List<Integer> jobCalls = new ArrayList<>();
        BaseAnswers kept = new BaseAnswers((m, prompts, n) -> {
            jobCalls.add(prompts.size());
            return prompts.stream().map(p -> new int[] {-p.length}).toList();
        });
        BaseAnswers.Generator preparation = (m, prompts, n) -> {
            generating.countDown();
            try {
                assertTrue(release.await(30, TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            return prompts.stream().map(p -> new int[] {p.length}).toList();
        };
        List<int[]> prompts = List.of(new int[] {1}, new int[] {1, 2}, new int[] {1, 2, 3});
        Thread prepare = Thread.ofPlatform().start(() -> kept.answers("m", prompts, 4, preparation));
        assertTrue(generating.await(30, TimeUnit.SECONDS));
        CountDownLatch asking = new CountDownLatch(1);
        CompletableFuture<List<int[]>> job = CompletableFuture.supplyAsync(() -> {
            asking.countDown();
            return kept.answers("m", prompts.subList(1, 3), 4);
        });
        assertTrue(asking.await(30, TimeUnit.SECONDS));
        Thread.sleep(200);  // the job has asked; were it not waiting, its instant generator would have answered by now
        assertFalse(job.isDone(), "the job waits for the preparation");
        release.countDown();
        List<int[]> got = job.get(30, TimeUnit.SECONDS);
        prepare.join(30_000);
        assertArrayEquals(new int[] {2}, got.get(0), "the preparation's answers");
        assertArrayEquals(new int[] {3}, got.get(1));
        assertEquals(List.of(), jobCalls, "the job generated nothing");
        assertArrayEquals(new int[] {-4}, kept.answers("m", List.of(new int[] {1, 2, 3, 4}), 4).get(0), "a prompt not prepared: the job's generator");
    }
}
