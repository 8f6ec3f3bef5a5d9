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
import com.google.gson.JsonParser;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A server prepares its first job (JobRunner.prepare): once a steer is stored, and at a start with steers stored, it
 * generates the base model's answers to the built-in prompts a default job asks for (32 replay, 12 probes, 12 watch
 * prompts), leaving one of the engine's slots to the people it serves; with nothing stored it generates nothing.
 * Then the base model's side of every example a default job trains on (the built-in ones and each steered answer as
 * the person left it) and its answer at each fork (the gate's), so that the job that follows computes none of it.
 */
@Timeout(300)
class JobPreparationTest {
    /** The built-in prompts' answers (32 replay, 12 probes, 12 watch) and the base model's answer at the steer's fork. */
    private static final int PREPARED = 32 + 12 + 12 + 1;

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

    /**
     * Waits (at most 120 s each) for the built-in answers and then the base model's side of the replay and probe
     * examples and of the one steered answer; returns the deadline the test's later waits share.
     */
    private static long preparedWithTheAnswer(Server s) throws InterruptedException {
        preparedAndIdle(s.engine.stats(), PREPARED);
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (s.training.keptReferences() < 32 + 12 + 1) {  // the replay and probe examples, and the answer
            assertTrue(System.nanoTime() < deadline, "kept " + s.training.keptReferences() + " in 120 s");
            Thread.sleep(20);
        }
        return deadline;
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
            assertEquals(PREPARED, s.engine.stats().requests.get(), "each built-in prompt once, and the fork");
            assertTrue(most <= 1, "one of the two slots left free, ran " + most + " at once");
        }
        try (Server again = server(model, dir)) {  // a start with steers stored
            preparedAndIdle(again.engine.stats(), PREPARED);
            assertEquals(PREPARED, again.engine.stats().requests.get());
        }
    }

    @Test
    void aJobAfterTheSteersFindsTheBaseModelsSideOfEveryExampleReady() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        Path dir = Files.createTempDirectory("steer-prepare-answers");
        try (Server s = server(model, dir)) {
            s.steers.insert(steer("tiny"));
            long deadline = preparedWithTheAnswer(s);
            // The stream the steer continued ends: the answer as the person left it is another example, prepared
            // again (the one before it, which no job reads now, dropped).
            long prepared = s.training.preparedExamples();
            s.steers.setContinuation("r1", new int[] {9, 10}, "ab");
            while (s.training.preparedExamples() == prepared) {
                assertTrue(System.nanoTime() < deadline, "kept " + s.training.keptReferences() + " in 120 s");
                Thread.sleep(20);
            }
            assertEquals(32 + 12 + 1, s.training.keptReferences(), "the answer before its continuation dropped");
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + s.port();
            HttpResponse<String> created = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs"))
                    .POST(HttpRequest.BodyPublishers.ofString("""
                            {"model": "tiny", "hyperparameters": {"n_epochs": 1},
                             "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}""")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, created.statusCode(), created.body());
            String id = JsonParser.parseString(created.body()).getAsJsonObject().get("id").getAsString();
            String status = "";
            while (!status.equals("succeeded") && !status.equals("failed")) {
                assertTrue(System.nanoTime() < deadline + 120_000_000_000L, "the job ended in time: " + status);
                Thread.sleep(50);
                status = JsonParser.parseString(http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs/" + id)).build(),
                        HttpResponse.BodyHandlers.ofString()).body()).getAsJsonObject().get("status").getAsString();
            }
            assertEquals("succeeded", status);
            String events = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs/" + id + "/events?limit=100")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(events.contains("The base model's side of 33 of the 33 examples"), events);
        }
    }

    /**
     * A pass never runs beside a job (one trainer at a time: JobRunner.trainerTurn): a steer recorded while a job
     * trains wakes a pass that gives way and computes nothing; once the job ends a pass runs and prepares it.
     */
    @Test
    void aPassGivesWayToAJobAndRunsAfterIt() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        Path dir = Files.createTempDirectory("steer-prepare-job");
        try (Server s = server(model, dir)) {
            s.steers.insert(steer("tiny"));
            long deadline = preparedWithTheAnswer(s);
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + s.port();
            String id = JsonParser.parseString(http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs"))
                    .POST(HttpRequest.BodyPublishers.ofString("""
                            {"model": "tiny", "hyperparameters": {"n_epochs": 100, "batch_size": 1},
                             "eval": {"auto_activate": false}}""")).build(),
                    HttpResponse.BodyHandlers.ofString()).body()).getAsJsonObject().get("id").getAsString();
            // Not only "running": the job must have read its examples, or it reads the record below too, computes and
            // keeps its base-model side itself, and the pass after it finds nothing to do (a race CI's slower machine hit).
            while (!http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs/" + id + "/events?limit=100")).build(),
                    HttpResponse.BodyHandlers.ofString()).body().contains("The base model's side of")) {
                assertTrue(System.nanoTime() < deadline, "the job read its examples in time");
                Thread.sleep(20);
            }
            long before = s.training.preparedExamples();
            s.steers.insert(new SteerRecord("r2", "s2", "steer", "tiny", null, "{\"messages\":[{\"role\":\"user\",\"content\":\"yo\"}]}",
                    new int[] {1, 9, 3}, 2, new int[] {4, 6}, new int[] {5}, new int[] {8, 7}, "yx", "", "", null, null, null, false,
                    Set.of(), 2000, 2000));
            Thread.sleep(1500);  // a pass woke 300 ms after the record, and found the job's turn taken
            assertEquals("running", status(http, base, id), "the job still trains (else this test proves nothing)");
            assertEquals(before, s.training.preparedExamples(), "nothing computed beside the job");
            http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs/" + id + "/cancel")).POST(HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.ofString());
            while (s.training.preparedExamples() == before) {  // the job's end wakes a pass: the new answer prepared
                assertTrue(System.nanoTime() < deadline, "prepared after the job in time");
                Thread.sleep(20);
            }
        }
    }

    private static String status(HttpClient http, String base, String id) throws Exception {
        return JsonParser.parseString(http.send(HttpRequest.newBuilder(URI.create(base + "/v1/fine_tuning/jobs/" + id)).build(),
                HttpResponse.BodyHandlers.ofString()).body()).getAsJsonObject().get("status").getAsString();
    }
}
