package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A job with {@code on_policy}: before its last epoch the adapter so far is loaded into the engine, continues each
 * training answer after its correction and answers the replay prompts, and the last epoch trains on those too
 * (twice the examples, so more steps); the temporary adapter file is gone afterwards. The tiny random model says
 * nothing about whether this helps (bench/efficacy judges that on SmolLM2); this checks the mechanics.
 */
class OnPolicyJobTest {
    @Test
    void theLastEpochAlsoTrainsOnTheAdaptersOwnText() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time", "hello world", "tell me a story"));
            // 4 training answers + 4 replay answers = 8 examples: 2 steps of batch 4 a plain epoch, 4 an on-policy one.
            JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                    {"model": "tiny", "hyperparameters": {"n_epochs": 2, "batch_size": 4, "replay": 4, "on_policy": 1, "early_stopping": false},
                     "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}"""));
            String jobId = job.get("id").getAsString();
            List<JsonObject> events = SteerLoopTest.follow(s, jobId);
            JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + jobId));
            assertEquals("succeeded", done.get("status").getAsString(), done.toString());
            assertEquals(2 + 4, done.get("total_steps").getAsInt(), done.toString());
            assertTrue(events.stream().map(e -> e.get("message").getAsString())
                    .anyMatch(m -> m.contains("From epoch 2 on, also training on the adapter's own text: 8 continuations")), events.toString());
            long metrics = events.stream().filter(e -> e.get("type").getAsString().equals("metrics")).count();
            assertEquals(6, metrics, "one metrics event per step: " + events);
            try (var files = Files.list(s.dataDir.resolve("adapters"))) {
                assertTrue(files.noneMatch(f -> f.getFileName().toString().contains("-own")), "the temporary adapter file is deleted");
            }
        }
    }
}
