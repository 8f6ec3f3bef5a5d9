package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The loop on the real Gemma 3 270M, through HTTP: a scripted set of steers that all teach one habit (answers that
 * open with "Arr matey!"), a job over them, and an eval report that shows the habit carried over to held-out steers.
 */
class GemmaSteerLoopTest {
    static final String[][] STEERS = {
            {"What is the capital of France?", "Arr matey! Paris it be."},
            {"Name a primary color.", "Arr matey! Blue, like the sea."},
            {"How many legs does a spider have?", "Arr matey! Eight legs."},
            {"What do bees make?", "Arr matey! Bees make honey."},
            {"What is the opposite of hot?", "Arr matey! Cold, says I."},
            {"Which planet do we live on?", "Arr matey! The Earth."},
            {"What is frozen water called?", "Arr matey! Ice, it be."},
            {"How many days are in a week?", "Arr matey! Seven days."},
            {"What animal says moo?", "Arr matey! The cow."},
            {"What color is grass?", "Arr matey! Green grass."},
    };

    @Test
    void heldOutSteersImproveAfterAJob() throws Exception {
        Path gemma = TestModels.gemmaOrNull();
        Assumptions.assumeTrue(gemma != null, "Gemma 3 270M not available: run `bash models/fetch-gemma3-270m.sh` (test.sh does)");
        try (LlamaModel m = LlamaModel.load(gemma, new LlamaModel.Params(TestModels.params().gpuLayers(), true, false));
             TestServer s = new TestServer(m, "gemma-sha", "gemma", 2, null, Files.createTempDirectory("steer-gemma-loop"))) {
            for (String[] st : STEERS) {
                String body = s.post("/v1/chat/completions", "{\"stream\":true,\"temperature\":0,\"max_tokens\":8,\"messages\":"
                        + "[{\"role\":\"user\",\"content\":\"" + st[0] + "\"}]}").body();
                String first = body.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
                String id = JsonParser.parseString(first.substring(6)).getAsJsonObject().get("id").getAsString();
                var r = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + st[1] + "\",\"max_tokens\":1}");
                assertEquals(200, r.statusCode(), r.body());
            }
            long t0 = System.nanoTime();
            var created = s.post("/v1/fine_tuning/jobs", """
                    {"method": "sft+dpo", "hyperparameters": {"n_epochs": 2, "batch_size": 2, "learning_rate": 0.002, "beta": 0.5, "replay": 0,
                                                       "validation_split": 0.2},
                     "eval": {"auto_activate": true}}""");
            assertEquals(200, created.statusCode(), created.body());
            String jobId = JsonParser.parseString(created.body()).getAsJsonObject().get("id").getAsString();
            SteerLoopTest.follow(s, jobId);
            JsonObject job = JsonParser.parseString(s.get("/v1/fine_tuning/jobs/" + jobId).body()).getAsJsonObject();
            assertEquals("succeeded", job.get("status").getAsString(), job.toString());
            JsonObject eval = job.getAsJsonObject("eval");
            System.err.printf("Gemma 3 270M loop: %d steers, job %.1f s, %s tokens/s; eval %s%nloss curve %s%n", STEERS.length,
                    (System.nanoTime() - t0) / 1e9, job.get("tokens_per_second"), eval, job.get("loss_curve"));
            assertEquals(2, eval.get("held_out").getAsInt(), "a fifth of the 10 steers, as the job asked");
            assertTrue(eval.get("adapter_nll").getAsDouble() < eval.get("base_nll").getAsDouble() * 0.7,
                    "held-out corrections became likelier: " + eval);
            assertTrue(eval.get("adapter_preference_accuracy").getAsDouble() >= eval.get("base_preference_accuracy").getAsDouble(), eval.toString());
            if (eval.get("verdict").getAsString().equals("passed")) {
                assertEquals("v1", JsonParser.parseString(s.get("/v1/adapters").body()).getAsJsonObject().get("active").getAsString());
            }
        }
    }
}
