package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The whole loop through HTTP only, on the tiny model: stream, steer several times, start a fine-tuning job (with
 * activation checkpointing; GemmaSteerLoopTest trains without), follow its events, see the adapter activated, and the same prompts now answer with the correction; rollback restores
 * the base model's output exactly.
 */
class SteerLoopTest {
    static final String CORRECTION = "the steer is in";
    // Each prompt is steered twice: the held-out steer is drawn at random (steer ids are random), and every prompt
    // asked afterwards must still have a steer in the training part.
    static final List<String> PROMPTS = List.of("hello world", "tell me a story", "what is the time",
            "hello world", "tell me a story", "what is the time");

    static String chatBody(String model, String user, boolean stream, int maxTokens) {
        return "{\"model\":\"" + model + "\",\"stream\":" + stream + ",\"temperature\":0,\"ignore_eos\":true,\"max_tokens\":" + maxTokens
                + ",\"messages\":[{\"role\":\"user\",\"content\":\"" + user + "\"}]}";
    }

    /**
     * A small job on the tiny model (one epoch, batch 2, two replay answers, no early stopping, a gate that lets any
     * adapter through unactivated), {@code extra} added to its hyperparameters; the finished job with its events.
     */
    static JsonObject runSmallJob(TestServer s, String extra) throws Exception {
        JsonObject job = json(s.post("/v1/fine_tuning/jobs", """
                {"model": "tiny", "hyperparameters": {"n_epochs": 1, "batch_size": 2, "replay": 2, "early_stopping": false%s},
                 "eval": {"max_changed": 1, "max_degenerate": 1, "auto_activate": false}}""".formatted(extra.isEmpty() ? "" : ", " + extra)));
        List<JsonObject> events = follow(s, job.get("id").getAsString());
        JsonObject done = json(s.get("/v1/fine_tuning/jobs/" + job.get("id").getAsString()));
        done.add("events", com.google.gson.JsonParser.parseString(events.toString()));
        return done;
    }

    static JsonObject json(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    static String answer(TestServer s, String model, String user) throws Exception {
        JsonObject o = json(s.post("/v1/chat/completions", chatBody(model, user, false, 12)));
        return o.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message").get("content").getAsString();
    }

    /** The answer with {@code fields} (JSON members, or "") added to the request. */
    static String answer(TestServer s, String model, String user, int maxTokens, String fields) throws Exception {
        String body = chatBody(model, user, false, maxTokens);
        JsonObject o = json(s.post("/v1/chat/completions", fields.isEmpty() ? body : "{" + fields + "," + body.substring(1)));
        return o.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message").get("content").getAsString();
    }

    /** Streams a completion to its end and returns its id. */
    static String streamed(TestServer s, String user) throws Exception {
        String body = s.post("/v1/chat/completions", chatBody(s.modelId, user, true, 8)).body();
        assertTrue(body.endsWith("data: [DONE]\n\n"), body);
        String first = body.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
        return JsonParser.parseString(first.substring(6)).getAsJsonObject().get("id").getAsString();
    }

    /** Streams an answer to each prompt and steers it at its start with {@link #CORRECTION} (two tokens after). */
    static void steerEachAtStart(TestServer s, List<String> prompts) throws Exception {
        for (String p : prompts) {
            String id = streamed(s, p);
            String cont = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + CORRECTION + "\",\"max_tokens\":2}").body();
            assertTrue(cont.contains("\"steer\""), cont);
        }
    }

    /** The job's SSE events until [DONE]. */
    static List<JsonObject> follow(TestServer s, String jobId) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(s.base() + "/v1/fine_tuning/jobs/" + jobId + "/events"))
                .header("Accept", "text/event-stream").build();
        List<JsonObject> events = new ArrayList<>();
        HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines()).body().forEach(line -> {
            if (line.startsWith("data: {")) {
                events.add(JsonParser.parseString(line.substring(6)).getAsJsonObject());
            }
        });
        return events;
    }

    @Test
    void steersBecomeAServingAdapterAndRollbackRestoresTheBase() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            List<String> before = new ArrayList<>();
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                before.add(answer(s, "tiny", p));
                assertFalse(before.get(before.size() - 1).startsWith(CORRECTION), "the base model does not say it already");
            }
            // Stream, then steer each finished answer at its start: the correction replaces what the model said.
            for (String p : PROMPTS) {
                String id = streamed(s, p);
                String cont = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + CORRECTION + "\",\"max_tokens\":2}").body();
                assertTrue(cont.contains("\"steer\""), cont);
            }
            assertEquals(PROMPTS.size(), json(s.get("/v1/steers")).getAsJsonArray("data").size());

            // A tiny random model is no judge of behaviour (its answers are noise, often loops, and any training
            // changes them), so the gate's behaviour bounds are opened here, no replay set is trained and the job
            // runs all its epochs (early stopping on one held-out fork says little here); the SmolLM2 test
            // (SmolLm2LearningTest) holds the job and the gate to their defaults on a real model.
            JsonObject job = json(s.post("/v1/fine_tuning/jobs", """
                    {"model": "tiny", "method": "sft+dpo",
                     "hyperparameters": {"n_epochs": 30, "batch_size": 2, "learning_rate": 0.005, "lora_rank": 8, "lora_alpha": 16,
                                         "activation_checkpointing": true, "replay": 0, "early_stopping": false},
                     "eval": {"max_changed": 1, "max_degenerate": 1}}"""));
            assertEquals("fine_tuning.job", job.get("object").getAsString());
            assertTrue(job.getAsJsonObject("hyperparameters").get("activation_checkpointing").getAsBoolean(), job.toString());
            String jobId = job.get("id").getAsString();
            List<JsonObject> events = follow(s, jobId);
            long metrics = events.stream().filter(e -> e.get("type").getAsString().equals("metrics")).count();
            assertTrue(metrics >= 30, "one metrics event per step: " + events);
            String last = events.get(events.size() - 1).get("message").getAsString();
            assertTrue(last.contains("is serving"), last);

            JsonObject done = json(s.get("/v1/fine_tuning/jobs/" + jobId));
            assertEquals("succeeded", done.get("status").getAsString(), done.toString());
            assertEquals("tiny@v1", done.get("fine_tuned_model").getAsString());
            JsonObject eval = done.getAsJsonObject("eval");
            System.err.println("tiny loop: eval " + eval + "\nloss curve " + done.getAsJsonArray("loss_curve"));
            assertEquals("passed", eval.get("verdict").getAsString());
            assertTrue(eval.get("adapter_nll").getAsDouble() < eval.get("base_nll").getAsDouble());
            // One held-out answer, one fork: too few to judge learning on (EvalGate.FORKS_TO_JUDGE_LEARNING); it is judged on
            // the forks it trained on instead: 30 epochs at a high rate, it says them all (the base none).
            assertEquals(1, eval.get("forks").getAsInt(), eval.toString());
            assertFalse(eval.get("judged_on_held_out").getAsBoolean(), eval.toString());
            assertTrue(eval.get("reason").getAsString().startsWith("learning judged on the 5 corrections it trained on, not on held-out forks (1;"),
                    eval.toString());
            int trained = eval.get("trained_forks").getAsInt();
            assertEquals(PROMPTS.size() - 1, trained, eval.toString());
            assertEquals(1.0, eval.get("trained_adapter_correction_rate").getAsDouble(), eval.toString());
            assertEquals(0.0, eval.get("trained_base_correction_rate").getAsDouble(), eval.toString());
            var curve = done.getAsJsonArray("loss_curve");
            assertTrue(curve.get(curve.size() - 1).getAsJsonObject().get("train_loss").getAsDouble()
                    < curve.get(0).getAsJsonObject().get("train_loss").getAsDouble(), "the loss fell: " + curve);

            JsonObject adapters = json(s.get("/v1/adapters"));
            assertEquals("v1", adapters.get("active").getAsString());
            JsonObject v1 = adapters.getAsJsonArray("data").get(0).getAsJsonObject();
            assertEquals(PROMPTS.size(), v1.getAsJsonArray("steer_ids").size() + v1.getAsJsonArray("held_out_ids").size(),
                    "the lineage names every steer: " + v1);
            assertEquals(1, v1.getAsJsonArray("held_out_ids").size());
            assertTrue(json(s.get("/v1/models")).toString().contains("tiny@v1"));

            // The plain model name now follows the adapter: each prompt answers with the correction.
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                String now = answer(s, "tiny", p);
                assertTrue(now.startsWith(CORRECTION), p + " -> " + now);
                assertEquals(now, answer(s, "tiny@v1", p), "pinning the version gives the same");
            }
            // An adapter's answers get a DRY penalty unless the request chooses one (GenerationRequest.ADAPTER_DRY):
            // by default the same answer as naming that penalty, and on this looping tiny model not the one without.
            String adapterDry = "\"dry_multiplier\":0.8,\"dry_base\":1.75,\"dry_allowed_length\":2,\"dry_penalty_last_n\":64,"
                    + "\"dry_sequence_breakers\":[\"\\n\"]";
            int differs = 0;
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                String byDefault = answer(s, "tiny", p, 48, "");
                assertEquals(byDefault, answer(s, "tiny", p, 48, adapterDry), p);
                differs += byDefault.equals(answer(s, "tiny", p, 48, "\"dry_multiplier\":0")) ? 0 : 1;
                assertEquals(answer(s, "tiny@base", p, 48, ""), answer(s, "tiny@base", p, 48, "\"dry_multiplier\":0"),
                        "the base model's answers get no DRY by default");
            }
            assertTrue(differs > 0, "DRY changed none of the adapter's answers");
            // ... in free text: an answer a grammar holds gets none (there repeats are the structure).
            String grammar = "\"grammar\":\"root ::= [a-c]+\"";
            String held = answer(s, "tiny", "hello world", 48, grammar);
            assertEquals(answer(s, "tiny", "hello world", 48, grammar + ",\"dry_multiplier\":0"), held);
            assertNotEquals(answer(s, "tiny", "hello world", 48, grammar + "," + adapterDry), held,
                    "on this grammar's three letters DRY would change the answer");
            // The base stays reachable by name, and rollback makes it the default again, exactly.
            assertEquals(before.get(0), answer(s, "tiny@base", "hello world"));
            JsonObject rolled = json(s.post("/v1/adapters/rollback", "{}"));
            assertTrue(rolled.get("active").isJsonNull(), rolled.toString());
            List<String> after = new ArrayList<>();
            for (String p : List.of("hello world", "tell me a story", "what is the time")) {
                after.add(answer(s, "tiny", p));
            }
            assertEquals(before, after, "rollback restores the base output exactly");
            assertEquals(409, s.post("/v1/adapters/rollback", "{}").statusCode(), "nothing left to roll back");
            assertNotEquals(0, s.engine.stats().adapterSwitches.get());
        }
    }
}
