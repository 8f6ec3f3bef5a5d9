package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code first_token_weight} through the API (FirstTokenTermTest checks the term itself): a job with it names the term
 * in its first event and shows the weight in its hyperparameters, and trains another adapter than the same job
 * without it; 0 (the default) is the job as before the term existed, byte for byte. A value out of range is a 400 that
 * makes no job.
 */
@Timeout(300)
class FirstTokenWeightJobTest {
    private static byte[] adapter(TestServer s, String weight) throws Exception {
        String field = weight == null ? "" : ", \"first_token_weight\": " + weight;
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 3, "batch_size": 4, "replay": 0, "validation_split": 0%s},
                 "eval": {"auto_activate": false}}""".formatted(field)));
        String id = job.get("id").getAsString();
        List<JsonObject> events = SteerLoopTest.follow(s, id);
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + id));
        assertEquals("succeeded", done.get("status").getAsString(), done.toString());
        float shown = done.getAsJsonObject("hyperparameters").get("first_token_weight").getAsFloat();
        assertEquals(weight == null ? 0f : Float.parseFloat(weight), shown, done.toString());
        assertEquals(shown > 0, events.toString().contains("x cross-entropy on each correction's first token"), events.toString());
        return Files.readAllBytes(s.dataDir.resolve("adapters").resolve(done.get("adapter_version").getAsString() + ".gguf"));
    }

    @Test
    void theTermTrainsAnotherAdapterAndZeroIsTheJobWithoutIt() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time"));
            byte[] without = adapter(s, null);
            assertTrue(Arrays.equals(without, adapter(s, "0")), "weight 0 is the default job");
            assertFalse(Arrays.equals(without, adapter(s, "2")), "weight 2 trains on the first tokens once more");

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            for (String bad : List.of("-1", "101", "\"high\"")) {
                var r = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"first_token_weight\": " + bad + "}}");
                assertEquals(400, r.statusCode(), r.body());
                assertTrue(r.body().contains("hyperparameters.first_token_weight"), r.body());
            }
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
