package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Early stopping is off by default (the job trains its epochs and saves the average after the last step; measured in
 * docs/training.md, the twenty-seventh session) and still there when a job asks for it: it measures the adapter twice
 * per epoch on the held-out forks and keeps a checkpoint; the default job measures nothing.
 */
@Timeout(300)
class EarlyStoppingJobTest {
    private static List<JsonObject> job(TestServer s, String extra) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 2, "batch_size": 2, "replay": 0, "validation_split": 0.3%s},
                 "eval": {"auto_activate": false}}""".formatted(extra)));
        String id = job.get("id").getAsString();
        List<JsonObject> events = SteerLoopTest.follow(s, id);
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + id));
        assertEquals("succeeded", done.get("status").getAsString(), done.toString());
        assertEquals(extra.contains("true"), done.getAsJsonObject("hyperparameters").get("early_stopping").getAsBoolean(), done.toString());
        return events;
    }

    @Test
    void offByDefaultAndMeasuredWhenAskedFor() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time", "name a colour"));
            String plain = job(s, "").toString();
            assertFalse(plain.contains("Check at step"), "the default job measures no checkpoint: " + plain);
            assertFalse(plain.contains("Keeping the checkpoint"), plain);
            assertTrue(plain.contains("The adapter saved is the moving average"), plain);

            String watched = job(s, ", \"early_stopping\": true").toString();
            assertTrue(watched.contains("Check at step"), "asked for, the job measures its checkpoints: " + watched);
            assertTrue(watched.contains("Keeping the checkpoint of step"), watched);
            assertTrue(watched.contains("The adapter measured, kept and saved is the moving average"), watched);
        }
    }
}
