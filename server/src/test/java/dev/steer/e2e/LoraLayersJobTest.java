package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A job with {@code lora_layers}: "auto" is resolved when the job is created, the job says which blocks it adapts,
 * the trainer gets that count (the adapter's size), the adapter serves under its pinned name, and a count below zero
 * is refused before anything is stored. LoraLayersTest checks the trainer's
 * arithmetic; bench/efficacy measures what it costs the habits (docs/training.md).
 */
class LoraLayersJobTest {
    /** Runs a job with {@code lora_layers} set to the JSON value given, to its end; returns the finished job. */
    private static JsonObject runJob(TestServer s, String loraLayers) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 2, "batch_size": 4, "replay": 4, "lora_layers": %s, "early_stopping": false},
                 "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}""".formatted(loraLayers)));
        String jobId = job.get("id").getAsString();
        List<JsonObject> events = SteerLoopTest.follow(s, jobId);
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + jobId));
        assertEquals("succeeded", done.get("status").getAsString(), done.toString());
        int n = done.getAsJsonObject("hyperparameters").get("lora_layers").getAsInt();
        String blocks = n == 2 ? "all 2 blocks" : "the last " + n + " of 2 blocks";
        assertTrue(events.stream().map(e -> e.get("message").getAsString()).anyMatch(m -> m.contains("LoRA rank 8 on " + blocks)), events.toString());
        return done;
    }

    @Test
    void aJobOnTheLastBlockServesItsAdapterAndABadCountIsRefused() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            var bad = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"lora_layers\": -1}}");
            assertEquals(400, bad.statusCode(), bad.body());
            JsonObject error = JsonParser.parseString(bad.body()).getAsJsonObject().getAsJsonObject("error");
            assertEquals("hyperparameters.lora_layers", error.get("param").getAsString(), bad.body());
            assertEquals(0, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "nothing stored");

            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time", "hello world", "tell me a story"));
            // "auto": the last half of the tiny llama's 2 blocks, resolved when the job is created (the job says 1).
            JsonObject half = runJob(s, "\"auto\"");
            assertEquals(1, half.getAsJsonObject("hyperparameters").get("lora_layers").getAsInt(), half.toString());
            JsonObject all = runJob(s, "0");
            assertEquals(2, all.getAsJsonObject("hyperparameters").get("lora_layers").getAsInt(), all.toString());
            // The trainer got the count: the adapter of every block holds twice the tensors of the last block's.
            long halfBytes = Files.size(s.dataDir.resolve("adapters").resolve(half.get("adapter_version").getAsString() + ".gguf"));
            long allBytes = Files.size(s.dataDir.resolve("adapters").resolve(all.get("adapter_version").getAsString() + ".gguf"));
            assertTrue(allBytes > 1.8 * halfBytes, halfBytes + " vs " + allBytes + " bytes");
            String pinned = half.get("fine_tuned_model").getAsString();
            assertTrue(!SteerLoopTest.answer(s, pinned, "hello world").isEmpty(), "the adapter serves under " + pinned);
        }
    }
}
