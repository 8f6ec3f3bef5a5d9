package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code activation_checkpointing} through the HTTP API: false, true (every block) or a number of runs of blocks; the
 * job says which it trains with. Anything else is a 400 that starts no job. ActivationCheckpointingTest checks that
 * each gives the gradients of training without it.
 */
class CheckpointingJobTest {
    private static JsonObject runJob(TestServer s, String checkpointing) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 1, "batch_size": 2, "replay": 2, "early_stopping": false,
                 "activation_checkpointing": %s}, "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}""".formatted(checkpointing)));
        List<JsonObject> events = SteerLoopTest.follow(s, job.get("id").getAsString());
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + job.get("id").getAsString()));
        done.add("events", com.google.gson.JsonParser.parseString(events.toString()));
        return done;
    }

    @Test
    void aJobCheckpointsAsAsked() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                String id = SteerLoopTest.streamed(s, p);
                var steer = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\": 2, \"text\": \" the steer\", \"max_tokens\": 2}");
                assertEquals(200, steer.statusCode(), steer.body());
            }
            JsonObject runs = runJob(s, "2");
            assertEquals("succeeded", runs.get("status").getAsString(), runs.toString());
            assertEquals(2, runs.getAsJsonObject("hyperparameters").get("checkpoint_segments").getAsInt(), runs.toString());
            assertTrue(runs.get("events").toString().contains("Activation checkpointing in 2 runs of blocks."), runs.toString());

            JsonObject every = runJob(s, "true");
            assertEquals("succeeded", every.get("status").getAsString(), every.toString());
            assertTrue(every.getAsJsonObject("hyperparameters").get("activation_checkpointing").getAsBoolean(), every.toString());
            assertTrue(every.get("events").toString().contains("Activation checkpointing of every block."), every.toString());

            JsonObject off = runJob(s, "false");
            assertEquals("succeeded", off.get("status").getAsString(), off.toString());
            assertTrue(!off.get("events").toString().contains("Activation checkpointing"), off.toString());

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            for (String bad : List.of("1", "0", "2.5", "\"2\"", "1001", "{}")) {
                var r = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"activation_checkpointing\": " + bad + "}}");
                assertEquals(400, r.statusCode(), bad + ": " + r.body());
                assertTrue(r.body().contains("hyperparameters.activation_checkpointing"), r.body());
            }
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
