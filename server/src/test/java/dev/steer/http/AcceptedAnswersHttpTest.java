package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.engine.Generation;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Accepted;
import dev.steer.steer.Session;
import dev.steer.testing.BlockingListener;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Streamed answers that finish without a steer or stop are recorded as accepted (approved text a job keeps the
 * adapter at the base on); other answers, and those a client asked not to store, are not.
 */
@Timeout(120)
class AcceptedAnswersHttpTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = new TestServer(model, "tiny", 2, null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static String chat(String user, String extra) {
        return "{\"model\":\"tiny\",\"temperature\":0,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"" + user + "\"}]"
                + extra + "}";
    }

    /** The completion id of a finished answer (streamed or not). */
    private static String answer(String body) throws Exception {
        HttpResponse<String> r = server.post("/v1/chat/completions", body);
        assertEquals(200, r.statusCode(), r.body());
        String first = body.contains("\"stream\":true")
                ? r.body().lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow().substring(6) : r.body();
        return JsonParser.parseString(first).getAsJsonObject().get("id").getAsString();
    }

    /** The accepted answers' session ids, once every write handed to the store's writer before now is done. */
    private static List<String> accepted() throws Exception {
        server.store.writer().submit(() -> {}).get(30, TimeUnit.SECONDS);  // the writer runs writes in order
        return server.store.accepted(server.server.served.baseModel(), 1000).stream().map(Accepted::sessionId).toList();
    }

    @Test
    void aStreamedAnswerLetRunIsRecordedWithItsPromptAndOutput() throws Exception {
        String id = answer(chat("let it run", ",\"stream\":true"));
        assertTrue(accepted().contains(id));
        Accepted a = server.store.accepted(server.server.served.baseModel(), 1000).stream()
                .filter(x -> x.sessionId().equals(id)).findFirst().orElseThrow();
        Session s = server.sessions.get(id).orElseThrow();
        assertArrayEquals(s.prompt(), a.promptTokens());
        int[] out = s.output();
        // the output, and the end-of-generation token last when the model ended the answer itself
        assertTrue(a.outputTokens().length == out.length || a.outputTokens().length == out.length + 1, a.outputTokens().length + " vs " + out.length);
        assertArrayEquals(out, Arrays.copyOf(a.outputTokens(), out.length));
    }

    @Test
    void answersNotWatchedOrNotToBeStoredAreNotRecorded() throws Exception {
        String whole = answer(chat("not streamed", ""));
        String notStored = answer(chat("do not store", ",\"stream\":true,\"store\":false"));
        String grammar = answer(chat("json", ",\"stream\":true,\"response_format\":{\"type\":\"json_object\"}"));
        String endIgnored = answer(chat("ignore eos", ",\"stream\":true,\"ignore_eos\":true"));
        String twoChoices = answer(chat("two choices", ",\"stream\":true,\"n\":2"));
        List<String> ids = accepted();
        for (String id : List.of(whole, notStored, grammar, endIgnored, twoChoices, Completions.choiceId(twoChoices, 1))) {
            assertFalse(ids.contains(id), id + " was recorded: " + ids);
        }
    }

    @Test
    void aSteerAfterTheEndTakesTheAnswerBack() throws Exception {
        String id = answer(chat("steer me later", ",\"stream\":true"));
        assertTrue(accepted().contains(id));
        HttpResponse<String> steer = server.post("/v1/chat/completions/" + id + "/steer", "{\"at\": 2, \"text\": \"no\", \"max_tokens\": 3}");
        assertEquals(200, steer.statusCode(), steer.body());
        assertFalse(accepted().contains(id), "steered: no longer an answer let run");
        JsonObject steers = JsonParser.parseString(server.get("/v1/steers?session_id=" + id).body()).getAsJsonObject();
        assertEquals(1, steers.getAsJsonArray("data").size(), steers.toString());
    }

    @Test
    void aResponsesAnswerIsRecordedUnlessNotToBeStored() throws Exception {
        String stored = responseId("{\"model\":\"tiny\",\"input\":\"keep me\",\"stream\":true,\"temperature\":0,\"max_output_tokens\":6}");
        String notStored = responseId("{\"model\":\"tiny\",\"input\":\"not me\",\"stream\":true,\"temperature\":0,\"max_output_tokens\":6,\"store\":false}");
        List<String> ids = accepted();
        assertTrue(ids.contains(stored), stored + " not in " + ids);
        assertFalse(ids.contains(notStored), notStored + " was recorded");
    }

    /** The id of a streamed Responses answer, read to its end. */
    private static String responseId(String body) throws Exception {
        HttpResponse<String> r = server.post("/v1/responses", body);
        assertEquals(200, r.statusCode(), r.body());
        String created = r.body().lines().filter(l -> l.startsWith("data: {") && l.contains("\"response.created\""))
                .findFirst().orElseThrow().substring(6);
        return JsonParser.parseString(created).getAsJsonObject().getAsJsonObject("response").get("id").getAsString();
    }

    /**
     * A generation cancelled mid-answer (what a client that goes away causes: `Respond.stream` cancels on a failed
     * write) was not let run: it is not recorded. Cancelled here through its handle while the decode thread is held,
     * so it cannot reach its end first (a hang-up is noticed only at a later write, by when a tiny model can be done).
     */
    @Test
    void aCancelledAnswerIsNotRecorded() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.base() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(chat("cancel me", ",\"stream\":true,\"max_tokens\":4000")))
                .build();
        BlockingListener hold = new BlockingListener();
        HttpResponse<Stream<String>> r = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        Iterator<String> lines = r.body().iterator();
        String first = lines.next();
        while (!first.startsWith("data: {")) {
            first = lines.next();
        }
        String id = JsonParser.parseString(first.substring(6)).getAsJsonObject().get("id").getAsString();
        Session s = server.sessions.get(id).orElseThrow();
        try {
            hold.block(server.engine);
            Generation g = s.live();
            assertNotNull(g, "still running when held");
            g.cancel();
        } finally {
            hold.release.countDown();
        }
        while (lines.hasNext()) {
            lines.next();  // the stream ends (bounded by the class timeout)
        }
        assertNull(s.live(), "the generation ended");
        int room = server.engine.contextPerSequence() - s.prompt().length;
        assertTrue(s.output().length < Math.min(4000, room) - 1, "cancelled, not run to its end: " + s.output().length + " of " + room);
        assertFalse(accepted().contains(id));
    }

    @Test
    void aStoppedAnswerIsNotRecorded() throws Exception {
        String id = answer(chat("stop me after", ",\"stream\":true"));
        HttpResponse<String> stop = server.post("/v1/chat/completions/" + id + "/stop", "{\"at\": 1}");
        assertEquals(200, stop.statusCode(), stop.body());
        assertFalse(accepted().contains(id));
    }
}
