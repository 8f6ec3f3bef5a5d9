package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.Scope;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A job's adapter serves, under the plain model name, the prompts like those its steers were made on, and the base
 * model the prompts like ordinary ones (its replay set, the other built-in replay prompts and the watch prompts;
 * eval.scope "steered", the default); the response names which served. With
 * eval.scope "all" it serves every prompt; any other scope is a 400 that starts no job. The gate judges the adapter as
 * served and says how many held-out forks and probes it serves.
 */
class ScopeJobTest {
    private static final String STEERED = "hello world";
    private static final String REPLAYED = "What is the capital of France?";  // ReplayPrompts.REPLAY's first
    private static final String BUILT_IN = "Write a short poem about the sea.";  // REPLAY's fifth: beyond the job's replay of 2
    private static final String WATCHED = "What is the tallest mountain in the world?";  // ReplayPrompts.WATCH's first

    private static JsonObject job(TestServer s, String scope) throws Exception {
        JsonObject job = SteerLoopTest.json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 1, "batch_size": 2, "replay": 2, "early_stopping": false},
                 "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false%s}}""".formatted(scope == null ? "" : ", \"scope\": \"" + scope + "\"")));
        SteerLoopTest.follow(s, job.get("id").getAsString());
        JsonObject done = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs/" + job.get("id").getAsString()));
        assertEquals("succeeded", done.get("status").getAsString(), done.toString());
        return done;
    }

    private static String servedBy(TestServer s, String user) throws Exception {
        String body = s.post("/v1/chat/completions", SteerLoopTest.chatBody("tiny", user, false, 4)).body();
        return JsonParser.parseString(body).getAsJsonObject().get("model").getAsString();
    }

    /** The answers the job held out are steers the person made too: their prompts are in the scope as well. */
    @Test
    void theScopeHoldsTheHeldOutAnswersPromptsToo() throws Exception {
        Path dir;
        int version;
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            dir = s.dataDir;
            for (String p : List.of("hello world", "tell me a story", "name three colors", "count to five", "say something kind")) {
                String id = SteerLoopTest.streamed(s, p);
                assertEquals(200, s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"the steer is in\",\"max_tokens\":2}").statusCode());
            }
            JsonObject done = job(s, null);
            String v = done.get("fine_tuned_model").getAsString();
            version = Integer.parseInt(v.substring(v.indexOf("@v") + 2));
        }
        try (AdapterRegistry registry = AdapterRegistry.open(dir.resolve("steers.db"), dir.resolve("adapters"))) {
            AdapterRegistry.Version v = registry.get(version).orElseThrow();
            assertEquals(1, v.heldOutIds().size(), "one of five answers held out");
            Scope scope = registry.scope(version).orElseThrow();
            assertEquals(5, scope.steered().size(), "the four trained answers' prompts and the held-out one's");
            assertEquals(1, scope.layer(), "compared by what the adapter reads: the input of the last of two blocks, the one adapted");
        }
    }

    @Test
    void theAdapterServesThePromptsLikeItsSteersAndTheBaseTheRest() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            for (String p : List.of(STEERED, STEERED, "tell me a story", "tell me a story")) {  // each prompt in training whatever is held out
                String id = SteerLoopTest.streamed(s, p);
                assertEquals(200, s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"the steer is in\",\"max_tokens\":2}").statusCode());
            }
            JsonObject scoped = job(s, null);
            JsonObject eval = scoped.getAsJsonObject("eval");
            assertEquals("steered", eval.get("scope").getAsString(), eval.toString());
            assertTrue(eval.get("probes_served").getAsInt() <= eval.get("probes").getAsInt(), eval.toString());
            assertTrue(eval.get("forks_served").getAsInt() <= eval.get("forks").getAsInt(), eval.toString());
            String v = scoped.get("fine_tuned_model").getAsString();  // tiny@vN
            SteerLoopTest.json(s.post("/v1/adapters/" + v.substring(v.indexOf('@') + 1) + "/activate", "{}"));
            assertEquals(v, servedBy(s, STEERED));
            assertEquals(v, servedBy(s, "tell me a story"));
            assertEquals("tiny@base", servedBy(s, REPLAYED), "a prompt of the replay set: the base model");
            assertEquals("tiny@base", servedBy(s, BUILT_IN), "a built-in prompt the job did not train on: the base model");
            assertEquals("tiny@base", servedBy(s, WATCHED), "a watch prompt: the base model");

            JsonObject all = job(s, "all");
            assertEquals("all", all.getAsJsonObject("eval").get("scope").getAsString());
            String w = all.get("fine_tuned_model").getAsString();
            SteerLoopTest.json(s.post("/v1/adapters/" + w.substring(w.indexOf('@') + 1) + "/activate", "{}"));
            assertEquals(w, servedBy(s, REPLAYED), "scope all: every prompt");
            assertEquals(w, servedBy(s, STEERED));

            int jobs = SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size();
            var bad = s.post("/v1/fine_tuning/jobs", "{\"model\": \"tiny\", \"eval\": {\"scope\": \"near\"}}");
            assertEquals(400, bad.statusCode(), bad.body());
            assertTrue(bad.body().contains("eval.scope"), bad.body());
            assertEquals(jobs, SteerLoopTest.json(s.get("/v1/fine_tuning/jobs")).getAsJsonArray("data").size(), "no job was made");
        }
    }
}
