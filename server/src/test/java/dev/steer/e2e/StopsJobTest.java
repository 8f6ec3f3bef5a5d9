package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Stops reach a job through the HTTP API: with {@code learn_stops} a server that has only stops (each keeping some
 * output and rejecting the rest) trains on them, the job saying it learns where an answer ends; without it, they
 * are left out and the job has nothing to train on. TrainingSetTest checks which tokens a stop teaches.
 */
class StopsJobTest {
    private static JsonObject runJob(TestServer s, boolean learnStops) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 1, "batch_size": 2, "replay": 2, "early_stopping": false, "learn_stops": %s},
                 "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}""".formatted(learnStops)));
        List<JsonObject> events = SteerLoopTest.follow(s, job.get("id").getAsString());
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + job.get("id").getAsString()));
        done.add("events", com.google.gson.JsonParser.parseString(events.toString()));
        return done;
    }

    @Test
    void stopsTrainOnlyWhenLearned() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                String id = SteerLoopTest.streamed(s, p);
                JsonObject stop = SteerLoopTest.json(s.post("/v1/chat/completions/" + id + "/stop", "{\"at\": 3}"));
                assertEquals("rejection", stop.get("kind").getAsString(), stop.toString());
            }

            JsonObject without = runJob(s, false);
            assertEquals("failed", without.get("status").getAsString(), without.toString());
            assertTrue(without.toString().contains("no steers with a correction"), without.toString());

            JsonObject with = runJob(s, true);
            assertEquals("succeeded", with.get("status").getAsString(), with.toString());
            assertTrue(with.getAsJsonObject("hyperparameters").get("learn_stops").getAsBoolean(), with.toString());
            assertTrue(with.get("events").toString().contains("a stop's: the end of the answer"), with.toString());
        }
    }
}
