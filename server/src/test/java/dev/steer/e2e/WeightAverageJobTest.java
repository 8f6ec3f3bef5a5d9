package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
 * A job with {@code ema_decay} (0.9 by default; 0 turns it off) saves the moving average of its weights (WeightAverageTest checks the arithmetic):
 * after one step the average is that step's weights, so the adapter is the one the same job writes without it, byte
 * for byte; after several steps it is another. An out-of-range decay is a 400 that makes no job.
 */
@Timeout(300)
class WeightAverageJobTest {
    private static byte[] adapter(TestServer s, int epochs, String ema) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": %d, "batch_size": 4, "replay": 0, "validation_split": 0, "early_stopping": false, "ema_decay": %s},
                 "eval": {"auto_activate": false}}""".formatted(epochs, ema)));
        String id = job.get("id").getAsString();
        List<JsonObject> events = SteerLoopTest.follow(s, id);
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + id));
        assertEquals("succeeded", done.get("status").getAsString(), done.toString());
        assertEquals(epochs, done.get("total_steps").getAsInt(), "one step an epoch: " + done);
        assertEquals(!ema.equals("0"), events.toString().contains("is the moving average of the weights"), events.toString());
        return Files.readAllBytes(s.dataDir.resolve("adapters").resolve(done.get("adapter_version").getAsString() + ".gguf"));
    }

    @Test
    void theSavedAdapterIsTheAverage() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time"));
            assertArrayEquals(adapter(s, 1, "0"), adapter(s, 1, "0.5"), "one step: the average is that step's weights");
            byte[] trained = adapter(s, 3, "0"), averaged = adapter(s, 3, "0.5");
            assertEquals(trained.length, averaged.length);
            assertFalse(Arrays.equals(trained, averaged), "three steps: the average lags the trained weights");

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            for (String bad : List.of("1", "-0.1")) {
                var r = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"hyperparameters\": {\"ema_decay\": " + bad + "}}");
                assertEquals(400, r.statusCode(), r.body());
                assertTrue(r.body().contains("hyperparameters.ema_decay"), r.body());
            }
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
