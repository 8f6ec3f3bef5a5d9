package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Learning from steers on the real default model, SmolLM2-135M-Instruct, through HTTP, at a small scale: a person
 * teaches one habit (how-to answers open with "Quick answer:") by steering finished answers at their start; the
 * default job's adapter must follow the habit on how-to questions it never saw, not say it on unrelated ones, and
 * the gate's verdict must agree with what it measured (it serves only if it passed; with its one held-out answer the
 * gate reports learning without judging it, EvalGate.FORKS_TO_JUDGE_LEARNING, so this test judges it: the correction
 * rate at that fork, and the habit on the held-out questions); asked for by the plain model name, as a client does, the
 * adapter serves the how-to questions (its scope) and the base model the unrelated ones, unchanged. Then a job without the
 * preservation term at a high learning rate collapses the model (the kind of adapter issue 11 measured), and the
 * gate must refuse it.
 *
 * <p>Unrelated answers count as changed only beyond a near-tie (the gate's rule, EvalGate.TIE_MARGIN): where the
 * adapter's greedy answer first parts from the base's, the base preferred its own token by 0.5 nats or more (from
 * the responses' logprobs). A random adapter too small to learn anything flips ~20% of these answers at near-ties,
 * so a plain comparison (printed too) says little.
 */
class SmolLm2LearningTest {
    static final String HABIT = "Quick answer:";
    static final List<String> TRAIN = List.of(
            "How do I make a cup of tea?", "How do I tie a tie?", "How do I boil pasta?", "How do I clean a window?",
            "How do I plant a tree?", "How do I fix a flat bike tire?", "How do I write a good email?",
            "How do I learn to swim?", "How do I bake bread?", "How do I save money each month?");
    static final List<String> HELD_OUT = List.of(
            "How do I make a paper airplane?", "How do I wash a car?", "How do I start running?", "How do I cook rice?");
    static final List<String> UNRELATED = List.of(
            "What is the capital of Italy?", "Translate 'dog' into French.", "What is 9 times 6?", "Write a haiku about snow.",
            "Who wrote Romeo and Juliet?", "What color is the sky on a clear day?", "Name a fruit that is yellow.",
            "What is the opposite of cold?");

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void theDefaultJobLearnsAHabitAndTheGateRefusesACollapse() throws Exception {
        Path smol = TestModels.smolLm2OrNull();
        Assumptions.assumeTrue(smol != null, "SmolLM2-135M-Instruct not available: run `bash models/fetch-smollm2.sh` (test.sh does)");
        try (LlamaModel m = LlamaModel.load(smol, new LlamaModel.Params(TestModels.params().gpuLayers(), true, false));
             TestServer s = new TestServer(m, "smol-sha", "smol", 4, null, Files.createTempDirectory("steer-smol-learning"))) {
            List<JsonObject> unrelatedBase = new ArrayList<>();
            for (String p : UNRELATED) {
                unrelatedBase.add(choice(s, "smol", p));
            }
            for (String p : HELD_OUT) {
                assertFalse(answer(s, "smol", p).startsWith(HABIT), "the base model does not have the habit: " + p);
            }
            // The person reads each finished answer and steers it at its start; the model goes on after the correction.
            for (String p : TRAIN) {
                String body = s.post("/v1/chat/completions", chat(p, true)).body();
                String first = body.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
                String id = JsonParser.parseString(first.substring(6)).getAsJsonObject().get("id").getAsString();
                var r = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + HABIT + "\",\"max_tokens\":40}");
                assertEquals(200, r.statusCode(), r.body());
            }

            long t0 = System.nanoTime();
            JsonObject job = runJob(s, "{}");
            double seconds = (System.nanoTime() - t0) / 1e9;
            JsonObject eval = job.getAsJsonObject("eval");
            System.err.printf("SmolLM2 default job: %.1f s, eval %s%n", seconds, eval);
            assertTrue(eval.get("adapter_correction_rate").getAsDouble() > eval.get("base_correction_rate").getAsDouble(), eval.toString());
            boolean passed = eval.get("verdict").getAsString().equals("passed");
            JsonObject adapters = JsonParser.parseString(s.get("/v1/adapters").body()).getAsJsonObject();
            assertEquals(passed ? "v1" : null, adapters.get("active").isJsonNull() ? null : adapters.get("active").getAsString(),
                    "the adapter serves exactly when the gate passed it: " + eval.get("reason"));
            int follows = 0;
            for (String p : HELD_OUT) {
                String a = answer(s, "smol@v1", p);
                System.err.println("held out: " + p + " -> " + a);
                follows += a.startsWith(HABIT) ? 1 : 0;
            }
            assertTrue(follows >= HELD_OUT.size() - 1, follows + " of " + HELD_OUT.size() + " held-out how-to answers open with the habit");
            int unchanged = 0, unchangedBeyondTies = 0;
            for (int i = 0; i < UNRELATED.size(); i++) {
                JsonObject c = choice(s, "smol@v1", UNRELATED.get(i));
                String a = text(c), b = text(unrelatedBase.get(i));
                boolean same = prefix(a).equals(prefix(b));
                boolean tie = !same && partsAtNearTie(unrelatedBase.get(i), c);
                System.err.println("unrelated: " + UNRELATED.get(i) + " -> " + a + (same ? "" : tie ? "   [near-tie]" : "   [changed]"));
                unchanged += same ? 1 : 0;
                unchangedBeyondTies += same || tie ? 1 : 0;
                assertFalse(a.contains(HABIT), "the habit leaked into an unrelated answer: " + a);
            }
            System.err.printf("SmolLM2 default adapter: %d of %d held-out answers follow the habit, %d of %d unrelated answers unchanged "
                    + "(first 40 chars), %d beyond near-ties, gate %s%n", follows, HELD_OUT.size(), unchanged, UNRELATED.size(),
                    unchangedBeyondTies, eval.get("verdict").getAsString());
            assertTrue(unchangedBeyondTies >= UNRELATED.size() - 2, unchangedBeyondTies + " of " + UNRELATED.size()
                    + " unrelated answers unchanged beyond near-ties");
            assertTrue(passed, "the default gate passes the default adapter: " + eval.get("reason"));

            // As a client gets it, by the plain name: the adapter serves the prompts like the steered ones (its scope),
            // the base model the rest, so unrelated answers stay the base's to the letter.
            int servedFollows = 0, servedUnchanged = 0;
            for (String p : HELD_OUT) {
                JsonObject c = choice(s, "smol", p);
                servedFollows += text(c).startsWith(HABIT) ? 1 : 0;
            }
            for (int i = 0; i < UNRELATED.size(); i++) {
                servedUnchanged += prefix(text(choice(s, "smol", UNRELATED.get(i)))).equals(prefix(text(unrelatedBase.get(i)))) ? 1 : 0;
            }
            System.err.printf("SmolLM2 default adapter as served: %d of %d held-out answers follow the habit, %d of %d unrelated answers unchanged%n",
                    servedFollows, HELD_OUT.size(), servedUnchanged, UNRELATED.size());
            assertTrue(servedFollows >= HELD_OUT.size() - 1, servedFollows + " of " + HELD_OUT.size() + " held-out answers as served follow the habit");
            assertTrue(servedUnchanged >= UNRELATED.size() - 1, servedUnchanged + " of " + UNRELATED.size() + " unrelated answers as served unchanged");

            // The broken kind: no preservation, a high learning rate, many steps, no early stopping. It learns the
            // corrections (NLL falls) and says them everywhere; the gate sees it in what the model generates and refuses.
            JsonObject collapse = runJob(s, "{\"hyperparameters\": {\"kl_weight\": 0, \"replay\": 0, \"learning_rate\": 0.002, \"n_epochs\": 12, \"early_stopping\": false}}");
            JsonObject bad = collapse.getAsJsonObject("eval");
            System.err.printf("SmolLM2 collapse job: eval %s%n", bad);
            assertTrue(bad.get("adapter_nll").getAsDouble() < bad.get("base_nll").getAsDouble(), "it did learn the corrections: " + bad);
            assertTrue(bad.get("probes_changed").getAsDouble() > 0.25 || bad.get("adapter_degenerate").getAsDouble() > bad.get("base_degenerate").getAsDouble(),
                    "the collapse shows in generated answers: " + bad);
            assertEquals("failed", bad.get("verdict").getAsString(), bad.toString());
            JsonObject after = JsonParser.parseString(s.get("/v1/adapters").body()).getAsJsonObject();
            assertFalse(!after.get("active").isJsonNull() && after.get("active").getAsString().equals("v2"), "the refused adapter does not serve");
        }
    }

    static JsonObject runJob(TestServer s, String body) throws Exception {
        var created = s.post("/v1/fine_tuning/jobs", body);
        assertEquals(200, created.statusCode(), created.body());
        String jobId = JsonParser.parseString(created.body()).getAsJsonObject().get("id").getAsString();
        SteerLoopTest.follow(s, jobId);
        JsonObject job = JsonParser.parseString(s.get("/v1/fine_tuning/jobs/" + jobId).body()).getAsJsonObject();
        assertEquals("succeeded", job.get("status").getAsString(), job.toString());
        return job;
    }

    static String chat(String prompt, boolean stream) {
        return "{\"stream\":" + stream + ",\"temperature\":0,\"max_tokens\":40,\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}";
    }

    static String answer(TestServer s, String model, String prompt) throws Exception {
        return text(choice(s, model, prompt));
    }

    /** The greedy answer's choice, with each token's log-probability and its top 20 alternatives. */
    static JsonObject choice(TestServer s, String model, String prompt) throws Exception {
        String body = "{\"model\":\"" + model + "\",\"logprobs\":true,\"top_logprobs\":20," + chat(prompt, false).substring(1);
        var r = s.post("/v1/chat/completions", body);
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonArray("choices").get(0).getAsJsonObject();
    }

    static String text(JsonObject choice) {
        return choice.getAsJsonObject("message").get("content").getAsString();
    }

    /**
     * Where the two greedy answers first part, did the base prefer its own token by less than 0.5 nats over the
     * other's (a near-tie)? A token outside the base's top 20 counts as its 20th.
     */
    static boolean partsAtNearTie(JsonObject base, JsonObject adapter) {
        var b = base.getAsJsonObject("logprobs").getAsJsonArray("content");
        var o = adapter.getAsJsonObject("logprobs").getAsJsonArray("content");
        for (int i = 0; i < Math.min(b.size(), o.size()); i++) {
            JsonObject bt = b.get(i).getAsJsonObject(), ot = o.get(i).getAsJsonObject();
            String want = ot.get("token").getAsString();
            if (bt.get("token").getAsString().equals(want)) {
                continue;
            }
            double other = Double.POSITIVE_INFINITY;
            for (var e : bt.getAsJsonArray("top_logprobs")) {
                JsonObject t = e.getAsJsonObject();
                double lp = t.get("logprob").getAsDouble();
                if (t.get("token").getAsString().equals(want)) {
                    other = lp;
                    break;
                }
                other = Math.min(other, lp);
            }
            return bt.get("logprob").getAsDouble() - other < 0.5;
        }
        return false;
    }

    private static String prefix(String s) {
        String t = s.strip();
        return t.length() <= 40 ? t : t.substring(0, 40);
    }
}
