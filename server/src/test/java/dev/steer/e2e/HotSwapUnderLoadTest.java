package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * An adapter activates while 8 streams run: none fails, each finishes on the adapter it started with, new requests
 * get the new adapter, and the longest pause any stream saw around the swap is measured and printed.
 */
class HotSwapUnderLoadTest {
    record Stream(List<Long> arrivals, String model, boolean done) {}

    @Test
    void eightStreamsRunThroughAnActivation() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        try (TestServer s = new TestServer(model, "tiny", 8, null)) {
            // An adapter to activate: a few real training steps, registered as v1.
            Path file = s.dataDir.resolve("trained.gguf");
            try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 8, 16f, 1, 2)) {
                int[] ctx = model.tokenize("hello world", true, false);
                LoraTrainer.Example e = new LoraTrainer.Example(ctx, model.tokenize(" the steer is in", false, false), new int[0]);
                for (int i = 0; i < 5; i++) {
                    t.step(List.of(e), List.of(new LoraTrainer.Reference(0, 0)), LoraTrainer.Weights.sftOnly(), 1e-2f, 0f);
                }
                t.save(file);
            }
            s.server.adapters.register(file, new AdapterRegistry.Lineage("tiny", "test-model-sha256", null, List.of(), List.of(),
                    new JsonObject(), new JsonObject(), "skipped"));

            HttpClient http = HttpClient.newHttpClient();
            CountDownLatch warm = new CountDownLatch(8);
            List<CompletableFuture<Stream>> streams = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                String body = "{\"model\":\"tiny\",\"stream\":true,\"temperature\":0.8,\"seed\":" + i
                        + ",\"ignore_eos\":true,\"max_tokens\":400,\"messages\":[{\"role\":\"user\",\"content\":\"story " + i + "\"}]}";
                streams.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        HttpRequest req = HttpRequest.newBuilder(URI.create(s.base() + "/v1/chat/completions"))
                                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
                        List<Long> at = new ArrayList<>();
                        String[] modelName = {null};
                        boolean[] done = {false};
                        http.send(req, HttpResponse.BodyHandlers.ofLines()).body().forEach(line -> {
                            if (line.equals("data: [DONE]")) {
                                done[0] = true;
                            } else if (line.startsWith("data: {")) {
                                JsonObject o = JsonParser.parseString(line.substring(6)).getAsJsonObject();
                                if (o.has("error")) {
                                    throw new AssertionError("stream failed: " + line);
                                }
                                modelName[0] = o.get("model").getAsString();
                                at.add(System.nanoTime());
                                if (at.size() == 20) {
                                    warm.countDown();
                                }
                            }
                        });
                        return new Stream(at, modelName[0], done[0]);
                    } catch (Exception ex) {
                        throw new RuntimeException(ex);
                    }
                }));
            }
            assertTrue(warm.await(60, TimeUnit.SECONDS), "the streams started");
            long t0 = System.nanoTime();
            HttpResponse<String> activated = s.post("/v1/adapters/v1/activate", "{}");
            long t1 = System.nanoTime();
            assertEquals(200, activated.statusCode(), activated.body());

            // New requests get the adapter while the old streams finish on the base.
            JsonObject fresh = JsonParser.parseString(s.post("/v1/chat/completions",
                    "{\"model\":\"tiny\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}").body()).getAsJsonObject();
            assertEquals("tiny@v1", fresh.get("model").getAsString(), fresh.toString());

            long worstGap = 0, worstBefore = 0;
            for (CompletableFuture<Stream> f : streams) {
                Stream st = f.get(120, TimeUnit.SECONDS);
                assertTrue(st.done(), "every stream ended with [DONE]");
                // Outlived the swap: chunks came after the activation had returned, so the swap happened under load
                // (a stream that ended before it would prove nothing about running streams).
                long after = st.arrivals().stream().filter(at -> at > t1).count();
                assertTrue(after >= 5, "the stream ran on after the activation: " + after + " chunks after it");
                assertEquals("tiny", st.model(), "a running stream keeps the adapter it started with");
                for (int i = 1; i < st.arrivals().size(); i++) {
                    long gap = st.arrivals().get(i) - st.arrivals().get(i - 1);
                    long when = st.arrivals().get(i);
                    if (when >= t0 && when <= t1 + 200_000_000L) {
                        worstGap = Math.max(worstGap, gap);
                    } else if (when < t0) {
                        worstBefore = Math.max(worstBefore, gap);
                    }
                }
            }
            System.err.printf("hot-swap under 8 streams: activation call %.1f ms; longest gap between two chunks of one stream"
                    + " around the swap %.1f ms (before it: %.1f ms); adapter load on the decode thread %.1f ms;"
                    + " engine adapter switches %d%n", (t1 - t0) / 1e6, worstGap / 1e6, worstBefore / 1e6,
                    s.engine.stats().longestTaskNanos.get() / 1e6, s.engine.stats().adapterSwitches.get());
        }
    }
}
