package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Answers the person let run without a steer fill up to half of a job's replay set, the newest first; the built-in
 * prompts fill the rest. (Whether that helps is bench/efficacy's to say on SmolLM2; this checks the mechanics.)
 */
@Timeout(300)
class AcceptedReplayJobTest {
    @Test
    void aJobKeepsTheNewestAnswersLetRunInItsReplaySet() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            SteerLoopTest.steerEachAtStart(s, List.of("hello world", "tell me a story", "what is the time", "hello world"));
            for (String p : List.of("an answer let run", "another one", "and a third")) {  // streamed, its end not ignored
                String body = s.post("/v1/chat/completions", "{\"model\":\"tiny\",\"stream\":true,\"temperature\":0,\"max_tokens\":8,"
                        + "\"messages\":[{\"role\":\"user\",\"content\":\"" + p + "\"}]}").body();
                assertTrue(body.endsWith("data: [DONE]\n\n"), body);
            }
            s.store.writer().submit(() -> {}).get(30, TimeUnit.SECONDS);  // the accepted answers are written in order
            assertEquals(3, s.store.accepted(s.server.served.baseModel(), 10).size());
            JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                    {"model": "tiny", "hyperparameters": {"n_epochs": 1, "batch_size": 4, "replay": 4, "early_stopping": false},
                     "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}"""));
            String jobId = job.get("id").getAsString();
            List<JsonObject> events = SteerLoopTest.follow(s, jobId);
            JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + jobId));
            assertEquals("succeeded", done.get("status").getAsString(), done.toString());
            assertTrue(events.stream().map(e -> e.get("message").getAsString())
                    .anyMatch(m -> m.contains("and 4 replay answers (2 of them answers let run without a steer)")), events.toString());
        }
    }
}
