package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real server process, killed with SIGKILL right after acknowledging a steer: on restart the steer is there. */
class CrashDurabilityTest {
    private final HttpClient http = HttpClient.newHttpClient();

    private Process startServer(int port, Path db, Path log) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.steer.Main", "--model", TestModels.tinyLlamaPath().toString(), "--port", String.valueOf(port),
                "--steer-db", db.toString(), "--parallel", "2", "--ctx-size", "2048", "--threads", "1")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private void waitHealthy(int port, Process p) throws Exception {
        for (int i = 0; i < 300; i++) {
            assertTrue(p.isAlive(), "the server exited");
            try {
                if (http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health")).build(),
                        HttpResponse.BodyHandlers.ofString()).statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // starting
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the server did not start");
    }

    @Test
    void anAcknowledgedSteerSurvivesKillDashNine(@TempDir Path dir) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path db = dir.resolve("steers.db");
        Process server = startServer(port, db, dir.resolve("first.log"));
        String steerId;
        JsonObject ack;
        try {
            waitHealthy(port, server);
            String body = "{\"stream\":true,\"temperature\":0,\"ignore_eos\":true,\"max_tokens\":100000,"
                    + "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
            Iterator<String> lines = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofLines()).body().iterator();
            String id = null;
            for (int chunks = 0; chunks < 6; ) {
                String line = lines.next();
                if (line.startsWith("data: {")) {
                    id = JsonParser.parseString(line.substring(6)).getAsJsonObject().get("id").getAsString();
                    chunks++;
                }
            }
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions/" + id + "/steer"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"at\": 3, \"text\": \"remember me\"}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            ack = JsonParser.parseString(r.body()).getAsJsonObject();
            steerId = ack.get("id").getAsString();
        } finally {
            server.destroyForcibly();  // SIGKILL: no shutdown hook, no flush, no close
            server.waitFor();
        }
        assertEquals(137, server.exitValue(), "killed by SIGKILL");

        Process again = startServer(port, db, dir.resolve("second.log"));
        try {
            waitHealthy(port, again);
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/steers/" + steerId)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonObject rec = JsonParser.parseString(r.body()).getAsJsonObject();
            for (String f : List.of("session_id", "at", "correction", "rejected", "accepted")) {
                assertEquals(ack.get(f), rec.get(f), f);
            }
            assertEquals("remember me", rec.get("correction").getAsString());
            assertTrue(rec.getAsJsonArray("prompt_tokens").size() > 0 && rec.getAsJsonArray("fork_top_logprobs").size() > 0);
        } finally {
            again.destroy();
            again.waitFor();
        }
        assertTrue(new File(db.toString()).length() > 0);
    }

    private HttpResponse<String> post(int port, String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private JsonObject get(int port, String path) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    @Test
    void aKillDuringATrainingJobFailsTheJobAndLeavesTheRegistryConsistent(@TempDir Path dir) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path db = dir.resolve("steers.db");
        Process server = startServer(port, db, dir.resolve("first.log"));
        String jobId;
        try {
            waitHealthy(port, server);
            for (String user : List.of("one", "two", "three", "four")) {
                String body = post(port, "/v1/chat/completions", "{\"stream\":true,\"temperature\":0,\"max_tokens\":6,"
                        + "\"messages\":[{\"role\":\"user\",\"content\":\"" + user + "\"}]}").body();
                String first = body.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
                String id = JsonParser.parseString(first.substring(6)).getAsJsonObject().get("id").getAsString();
                assertEquals(200, post(port, "/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"fixed\",\"max_tokens\":1}").statusCode());
            }
            HttpResponse<String> job = post(port, "/v1/fine_tuning/jobs", "{\"hyperparameters\":{\"n_epochs\":100,\"batch_size\":1}}");
            assertEquals(200, job.statusCode(), job.body());
            jobId = JsonParser.parseString(job.body()).getAsJsonObject().get("id").getAsString();
            // Kill it once it is well into training.
            Iterator<String> events = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/fine_tuning/jobs/" + jobId + "/events?stream=true")).build(),
                    HttpResponse.BodyHandlers.ofLines()).body().iterator();
            for (int steps = 0; steps < 5; ) {
                if (events.next().contains("\"type\":\"metrics\"")) {
                    steps++;
                }
            }
            assertEquals("running", get(port, "/v1/fine_tuning/jobs/" + jobId).get("status").getAsString());
        } finally {
            server.destroyForcibly();
            server.waitFor();
        }
        assertEquals(137, server.exitValue(), "killed by SIGKILL");
        // As if the kill had come between writing an adapter file and registering it: a file no version owns.
        java.nio.file.Files.writeString(dir.resolve("adapters").resolve("v1.gguf"), "half an adapter");

        Process again = startServer(port, db, dir.resolve("second.log"));
        try {
            waitHealthy(port, again);
            JsonObject job = get(port, "/v1/fine_tuning/jobs/" + jobId);
            assertEquals("failed", job.get("status").getAsString(), job.toString());
            assertTrue(job.getAsJsonObject("error").get("message").getAsString().contains("stopped"), job.toString());
            JsonObject adapters = get(port, "/v1/adapters");
            assertEquals(0, adapters.getAsJsonArray("data").size(), adapters.toString());
            assertTrue(adapters.get("active").isJsonNull());
            try (var files = java.nio.file.Files.list(dir.resolve("adapters"))) {
                assertEquals(List.of(), files.toList(), "no stray adapter files");
            }
            HttpResponse<String> chat = post(port, "/v1/chat/completions", "{\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
            assertEquals(200, chat.statusCode(), chat.body());
            assertEquals(4, get(port, "/v1/steers").getAsJsonArray("data").size(), "the steers are all there");
        } finally {
            again.destroy();
            again.waitFor();
        }
    }
}
