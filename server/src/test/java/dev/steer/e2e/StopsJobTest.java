package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Stops reach a job through the HTTP API: a server that has only stops (each keeping some output and rejecting the
 * rest) trains on them when the job reads them ({@code stops: "end"}, the default, or {@code "avoid"}), the job saying
 * what it learns; with {@code "ignore"} they are left out and the job has nothing to train on; an unknown reading is a
 * 400 that starts no job. TrainingSetTest checks which tokens a stop teaches.
 */
class StopsJobTest {
    private static JsonObject runJob(TestServer s, String stops) throws Exception {
        return SteerLoopTest.runSmallJob(s, stops == null ? "" : "\"stops\": \"" + stops + "\"");
    }

    @Test
    void stopsTrainOnlyWhenLearned() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                String id = SteerLoopTest.streamed(s, p);
                JsonObject stop = SteerLoopTest.json(s.post("/v1/chat/completions/" + id + "/stop", "{\"at\": 3}"));
                assertEquals("rejection", stop.get("kind").getAsString(), stop.toString());
            }

            JsonObject without = runJob(s, "ignore");
            assertEquals("failed", without.get("status").getAsString(), without.toString());
            assertTrue(without.toString().contains("no steers with a correction"), without.toString());
            assertEquals("ignore", without.getAsJsonObject("hyperparameters").get("stops").getAsString(), without.toString());

            JsonObject end = runJob(s, null);
            assertEquals("succeeded", end.get("status").getAsString(), end.toString());
            assertEquals("end", end.getAsJsonObject("hyperparameters").get("stops").getAsString(), end.toString());
            assertTrue(end.get("events").toString().contains("a stop's: the end of the answer"), end.toString());

            JsonObject avoid = runJob(s, "avoid");
            assertEquals("succeeded", avoid.get("status").getAsString(), avoid.toString());
            assertEquals(1.0, avoid.getAsJsonObject("hyperparameters").get("unlikelihood_weight").getAsDouble(), avoid.toString());
            assertTrue(avoid.get("events").toString().contains("unlikelihood of what the model said where the person stopped it"), avoid.toString());

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            var bad = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"stops\": \"never\"}}");
            assertEquals(400, bad.statusCode(), bad.body());
            assertTrue(bad.body().contains("hyperparameters.stops"), bad.body());
            var old = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"learn_stops\": false}}");
            assertEquals(400, old.statusCode(), old.body());
            assertTrue(old.body().contains("hyperparameters.stops"), old.body());
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
