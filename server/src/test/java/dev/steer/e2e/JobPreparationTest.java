package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.Server;
import dev.steer.engine.Engine;
import dev.steer.engine.EngineStats;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerRecord;
import dev.steer.steer.SteerStore;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A server prepares its first job (JobRunner.prepare): once a steer is stored, and at a start with steers stored, it
 * generates the base model's answers to the built-in prompts a default job asks for (32 replay, 12 probes, 12 watch
 * prompts), leaving one of the engine's slots to the people it serves; with nothing stored it generates nothing.
 */
@Timeout(300)
class JobPreparationTest {
    private static final int PREPARED = 32 + 12 + 12;

    private static Server server(LlamaModel model, Path dir) {
        return new Server(model, new Server.Config("tiny-sha", dir.resolve("steers.db"), dir.resolve("adapters"), 60_000, null, 2,
                new Engine.Config(2, 4096, 256, 2, 16), TestServer.api("tiny", null), Sessions.DEFAULT_MAX,
                SteerStore.DEFAULT_KEEP_ACCEPTED, true));
    }

    private static SteerRecord steer(String model) {
        return new SteerRecord("r1", "s1", "steer", model, null, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                new int[] {1, 2, 3}, 2, new int[] {4, 5}, new int[] {6}, new int[] {7, 8}, "xy", "", "", null, null, null, false,
                Set.of(), 1000, 1000);
    }

    /** Waits (at most 120 s) until the engine has taken {@code n} requests and runs none; the most it ran at once. */
    private static long preparedAndIdle(EngineStats stats, int n) throws InterruptedException {
        long most = 0;
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!(stats.requests.get() >= n && stats.active.get() == 0 && stats.queued.get() == 0)) {
            assertTrue(System.nanoTime() < deadline, "prepared " + stats.requests.get() + " of " + n + " answers in 120 s");
            most = Math.max(most, stats.active.get());
            Thread.sleep(2);
        }
        return most;
    }

    @Test
    void aStoredSteerAndAStartWithSteersPrepareTheBaseAnswers() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        Path dir = Files.createTempDirectory("steer-prepare");
        try (Server s = server(model, dir)) {
            Thread.sleep(500);  // a preparation started with the server would have asked the engine for answers by now
            assertEquals(0, s.engine.stats().requests.get(), "nothing stored: nothing to prepare");
            s.steers.insert(steer("tiny"));
            long most = preparedAndIdle(s.engine.stats(), PREPARED);
            assertEquals(PREPARED, s.engine.stats().requests.get(), "each built-in prompt once");
            assertTrue(most <= 1, "one of the two slots left free, ran " + most + " at once");
        }
        try (Server again = server(model, dir)) {  // a start with steers stored
            preparedAndIdle(again.engine.stats(), PREPARED);
            assertEquals(PREPARED, again.engine.stats().requests.get());
        }
    }
}
