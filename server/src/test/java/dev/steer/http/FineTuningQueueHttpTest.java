package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The fine-tuning queue is bounded (issue 16, item 9: 300 jobs were accepted in 0.7 s). Every wait is bounded. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FineTuningQueueHttpTest {
    @Test
    void jobsBeyondTheQueuedLimitAreA429() throws Exception {
        try (TestServer server = new TestServer(TestModels.tinyLlama(), "tiny", 1, null)) {
            List<HttpResponse<String>> answers = new ArrayList<>();
            // The runner reads the steers first thing in a job: holding the store's lock holds the first job there, so
            // the others stay queued however fast the runner would otherwise fail them (there are no steers).
            synchronized (server.store) {
                for (int i = 0; i < FineTuningRoutes.MAX_QUEUED_JOBS + 4; i++) {
                    answers.add(server.post("/v1/fine_tuning/jobs", "{}"));
                }
            }
            long accepted = answers.stream().filter(r -> r.statusCode() == 200).count();
            // 16 queued, and one more if the runner had taken the first off the queue by then
            assertTrue(accepted == FineTuningRoutes.MAX_QUEUED_JOBS || accepted == FineTuningRoutes.MAX_QUEUED_JOBS + 1,
                    accepted + " accepted");
            for (HttpResponse<String> r : answers.subList((int) accepted, answers.size())) {
                assertEquals(429, r.statusCode(), r.body());
                JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
                assertEquals("rate_limit_exceeded", e.get("type").getAsString(), r.body());
                assertEquals("too_many_jobs", e.get("code").getAsString(), r.body());
                assertTrue(e.has("param"), r.body());
                assertTrue(e.get("message").getAsString().contains(String.valueOf(FineTuningRoutes.MAX_QUEUED_JOBS)), r.body());
            }
            assertEquals(accepted, server.server.jobs.list().size(), "a refused job is not stored");

            // Room again once the queue drains (each job fails at once: there are no steers to train on).
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (server.server.jobs.list().stream().anyMatch(j -> !j.status().finished())) {
                assertTrue(System.nanoTime() < deadline, "the queued jobs did not finish");
                Thread.sleep(20);
            }
            assertEquals(200, server.post("/v1/fine_tuning/jobs", "{}").statusCode());
        }
    }
}
