package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code activation_checkpointing} through the HTTP API: false, true (every block) or a number of runs of blocks; the
 * job says which it trains with. Anything else is a 400 that starts no job. ActivationCheckpointingTest checks that
 * each gives the gradients of training without it.
 */
class CheckpointingJobTest {
    private static JsonObject runJob(TestServer s, String checkpointing) throws Exception {
        // LoRA on both of the tiny model's blocks, so that two runs are two ("auto" adapts one).
        return SteerLoopTest.runSmallJob(s, "\"lora_layers\": 0, \"activation_checkpointing\": " + checkpointing);
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
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
            assertTrue(runs.get("events").toString().contains("Activation checkpointing in 2 runs of blocks (and of the attention's activations)."), runs.toString());

            JsonObject every = runJob(s, "true");
            assertEquals("succeeded", every.get("status").getAsString(), every.toString());
            assertTrue(every.getAsJsonObject("hyperparameters").get("activation_checkpointing").getAsBoolean(), every.toString());
            assertTrue(every.get("events").toString().contains("Activation checkpointing of every block (and of the attention's activations)."), every.toString());

            JsonObject off = runJob(s, "false");
            assertEquals("succeeded", off.get("status").getAsString(), off.toString());
            assertFalse(off.get("events").toString().contains("Activation checkpointing"), off.toString());

            // a job's hyperparameters sent back ask for the same: checkpoint_segments is taken as input too
            JsonObject again = runJob(s, "false, \"checkpoint_segments\": 2");
            assertEquals(2, again.getAsJsonObject("hyperparameters").get("checkpoint_segments").getAsInt(), again.toString());
            assertTrue(again.get("events").toString().contains("Activation checkpointing in 2 runs of blocks (and of the attention's activations)."), again.toString());

            JsonObject many = runJob(s, "1000");  // more runs than blocks: one per block, and the job says so
            assertEquals("succeeded", many.get("status").getAsString(), many.toString());
            assertTrue(many.get("events").toString().contains("Activation checkpointing in 2 runs of blocks (and of the attention's activations)."), many.toString());

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            for (String bad : List.of("1", "0", "2.5", "2.0000000000000001", "\"2\"", "1001", "{}")) {
                var r = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"activation_checkpointing\": " + bad + "}}");
                assertEquals(400, r.statusCode(), bad + ": " + r.body());
                assertTrue(r.body().contains("hyperparameters.activation_checkpointing"), r.body());
            }
            var one = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"checkpoint_segments\": 1}}");
            assertEquals(400, one.statusCode(), one.body());
            assertTrue(one.body().contains("hyperparameters.checkpoint_segments"), one.body());
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
