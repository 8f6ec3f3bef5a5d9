package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The JSON a job's followers read: OpenAI's event shape, metrics only on metrics events, the counters and curve. */
class JobProgressTest {
    @Test
    void eventsAndCountersHaveOpenAisShape() throws InterruptedException {
        JobProgress p = new JobProgress("ftjob-abc");
        p.message("info", "Training on 3 steers.");
        p.stepped(1, 10, 1, 2.5f, 0.75f, 1e-3f, 120, 33.333, 270.04);
        List<JsonObject> events = p.await(0, 0);
        assertEquals(2, events.size());
        JsonObject message = events.get(0);
        assertEquals("fine_tuning.job.event", message.get("object").getAsString());
        assertEquals("ftevent-abc-0", message.get("id").getAsString());
        assertEquals("info", message.get("level").getAsString());
        assertEquals("message", message.get("type").getAsString());
        assertTrue(message.get("created_at").getAsLong() > 1_700_000_000L, "seconds since the epoch");
        assertFalse(message.has("data"), "no data on a message event: " + message);
        JsonObject metrics = events.get(1);
        assertEquals("ftevent-abc-1", metrics.get("id").getAsString());
        assertEquals("metrics", metrics.get("type").getAsString());
        assertEquals("Step 1/10: training loss=2.5000", metrics.get("message").getAsString());
        JsonObject data = metrics.getAsJsonObject("data");
        assertEquals(1, data.get("step").getAsInt());
        assertEquals(10, data.get("total_steps").getAsInt());
        assertEquals(2.5, data.get("train_loss").getAsDouble(), 1e-6);
        assertEquals(0.75, data.get("grad_norm").getAsDouble(), 1e-6);
        assertEquals(1e-3, data.get("learning_rate").getAsDouble(), 1e-9);
        assertEquals(33.3, data.get("tokens_per_second").getAsDouble(), 1e-9);
        assertEquals(270.0, data.get("eta_seconds").getAsDouble(), 1e-9);

        JsonObject c = p.snapshot();
        assertEquals(1, c.get("step").getAsInt());
        assertEquals(10, c.get("total_steps").getAsInt());
        assertEquals(120, c.get("trained_tokens").getAsLong());
        assertEquals(33.3, c.get("tokens_per_second").getAsDouble(), 1e-9);
        assertEquals(1, c.getAsJsonArray("loss_curve").size());
        JsonObject point = c.getAsJsonArray("loss_curve").get(0).getAsJsonObject();
        assertEquals(1, point.get("step").getAsInt());
        assertEquals(2.5, point.get("train_loss").getAsDouble(), 1e-6);
        assertEquals(2, point.size(), "a point is a step and its loss: " + point);
    }
}
