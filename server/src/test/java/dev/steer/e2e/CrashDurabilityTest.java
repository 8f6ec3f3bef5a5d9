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

    /** Kills in {@link #killsAtRandomMomentsLoseNothingAcknowledged}: a few in CI; {@code bench/crash.sh} asks for 20. */
    private static final int KILLS = Integer.getInteger("steer.crash.kills", 3);

    /**
     * Issue 16: kill -9 at random moments while a client steers (live and finished answers), stops, tags, deletes,
     * queues jobs and activates and rolls back adapters, {@link #KILLS} times over one data directory. After each kill:
     * SQLite's integrity check is clean; every acknowledged steer and rejection is there with its correction and tags,
     * every acknowledged delete is gone; every acknowledged job is there; every adapter version has its file and
     * no file is without a version; the active adapter is the one last acknowledged (unless an activation was in
     * flight at the kill); and the server serves.
     */
    @Test
    void killsAtRandomMomentsLoseNothingAcknowledged(@TempDir Path dir) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path db = dir.resolve("steers.db");
        Acknowledged acked = new Acknowledged();
        java.util.Random random = new java.util.Random(Long.getLong("steer.crash.seed", 16));
        for (int kill = 0; kill < KILLS; kill++) {
            Process server = startServer(port, db, dir.resolve("run-" + kill + ".log"));
            try {
                waitHealthy(port, server);
                if (kill > 0) {
                    acked.check(this, port, dir);
                }
                Workload w = new Workload(port, acked, new java.util.Random(random.nextLong()));
                Thread t = Thread.ofPlatform().start(w);
                Thread.sleep(500 + random.nextInt(4000));  // a random moment of the workload
                long killedAt = System.nanoTime();
                server.destroyForcibly();
                server.waitFor();
                t.join(60_000);
                assertTrue(!t.isAlive(), "the workload noticed the kill");
                if (w.failure != null && w.failedAt < killedAt) {
                    throw new AssertionError("the workload failed before the kill", w.failure);
                }
            } finally {
                server.destroyForcibly();
                server.waitFor();
            }
            assertEquals(137, server.exitValue(), "killed by SIGKILL");
            try (java.sql.Connection c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + db);
                 java.sql.Statement st = c.createStatement(); java.sql.ResultSet r = st.executeQuery("PRAGMA integrity_check")) {
                assertEquals("ok", r.getString(1), "SQLite integrity after kill " + kill);
            }
        }
        Process last = startServer(port, db, dir.resolve("last.log"));
        try {
            waitHealthy(port, last);
            acked.check(this, port, dir);
            System.out.println("crash: " + KILLS + " kills, " + acked.summary());
            assertTrue(acked.records.size() + acked.deleted.size() > 0, "the workload got steers acknowledged: the test proves something");
        } finally {
            last.destroy();
            last.waitFor();
        }
    }

    /** What the server acknowledged (a complete 200), and what was in flight when it was killed. */
    static final class Acknowledged {
        final java.util.Map<String, String> records = new java.util.concurrent.ConcurrentHashMap<>();  // id -> correction
        final java.util.Map<String, java.util.Set<String>> tags = new java.util.concurrent.ConcurrentHashMap<>();
        final java.util.Set<String> deleted = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final java.util.Set<String> jobs = java.util.concurrent.ConcurrentHashMap.newKeySet();
        volatile String active = null;  // "vN", or null for the base model
        volatile boolean activationInFlight;
        final java.util.concurrent.atomic.AtomicInteger activations = new java.util.concurrent.atomic.AtomicInteger();
        int checks;
        int versions;

        String summary() {
            return records.size() + " records, " + deleted.size() + " deletes, " + jobs.size() + " jobs, " + activations.get()
                    + " activations or rollbacks acknowledged; " + versions + " adapter versions; " + checks + " checks";
        }

        void check(CrashDurabilityTest t, int port, Path dir) throws Exception {
            checks++;
            for (var e : records.entrySet()) {
                JsonObject rec = t.get(port, "/v1/steers/" + e.getKey());
                assertEquals(e.getValue(), rec.get("correction").getAsString(), "acknowledged record " + e.getKey());
                for (String tag : tags.getOrDefault(e.getKey(), java.util.Set.of())) {
                    assertTrue(rec.getAsJsonArray("tags").toString().contains("\"" + tag + "\""), "tag " + tag + " of " + e.getKey());
                }
            }
            for (String id : deleted) {
                HttpResponse<String> r = t.http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/steers/" + id)).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(404, r.statusCode(), "acknowledged delete of " + id + ": " + r.body());
            }
            for (String id : jobs) {
                String status = t.get(port, "/v1/fine_tuning/jobs/" + id).get("status").getAsString();
                assertTrue(List.of("queued", "running", "succeeded", "failed", "cancelled").contains(status), id + " " + status);
            }
            // The files are listed before the versions: a job resumed at start may register a version meanwhile, and
            // registering moves the file into place before its row is written, so only this order is race-free.
            // Dot-files are a running job's work in progress (".job-<id>.gguf"); reconcile deletes them at open.
            List<Path> onDisk;
            try (var in = java.nio.file.Files.list(dir.resolve("adapters"))) {
                onDisk = in.filter(f -> !f.getFileName().toString().startsWith(".")).toList();
            }
            JsonObject adapters = t.get(port, "/v1/adapters");
            java.util.Set<String> files = new java.util.HashSet<>();
            for (var v : adapters.getAsJsonArray("data")) {
                String id = v.getAsJsonObject().get("id").getAsString();
                assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("adapters").resolve(id + ".gguf")), "version " + id + " has its file");
                files.add(id + ".gguf");
            }
            for (Path f : onDisk) {
                assertTrue(files.contains(f.getFileName().toString()), "a file without a version: " + f);
            }
            versions = files.size();
            String now = adapters.get("active").isJsonNull() ? null : adapters.get("active").getAsString();
            assertTrue(now == null || files.contains(now + ".gguf"), "the active adapter is a version");
            if (!activationInFlight) {
                assertEquals(active, now, "the active adapter is the one last acknowledged");
            }
            active = now;
            activationInFlight = false;
        }
    }

    /** A client doing everything at once, in a random order, until the server is gone. */
    private final class Workload implements Runnable {
        private final int port;
        private final Acknowledged acked;
        private final java.util.Random r;

        Workload(int port, Acknowledged acked, java.util.Random r) {
            this.port = port;
            this.acked = acked;
            this.r = r;
        }

        /** A failure of the workload itself, and when: one after the kill is the kill's doing. */
        volatile Throwable failure;
        volatile long failedAt;

        @Override
        public void run() {
            try {
                for (int n = 0; ; n++) {
                    step(n);
                }
            } catch (Throwable e) {
                // killed (a refused connection, a stream cut short): what was in flight may or may not have happened
                failure = e;
                failedAt = System.nanoTime();
            }
        }

        /**
         * A steer's answer: the record (a live steer), or a stream whose steer chunk acknowledges it (a finished
         * answer continued; the live one may have finished before the steer reached it).
         */
        private void steered(HttpResponse<String> s) {
            if (s.statusCode() != 200) {
                return;
            }
            if (s.body().startsWith("{")) {
                acknowledged(JsonParser.parseString(s.body()).getAsJsonObject(), "correction");
            } else {
                s.body().lines().filter(l -> l.startsWith("data: {") && l.contains("\"steer\":{")).findFirst().ifPresent(l ->
                        acknowledged(JsonParser.parseString(l.substring(6)).getAsJsonObject().getAsJsonObject("steer"), "inserted"));
            }
        }

        /** A 200 answered with a record: it must survive. {@code field}: the answer's name for the correction. */
        private void acknowledged(JsonObject answer, String field) {
            acked.records.put(answer.get("id").getAsString(), answer.get(field).getAsString());
        }

        private String firstId(Iterator<String> lines) {
            while (true) {
                String line = lines.next();
                if (line.startsWith("data: {")) {
                    return JsonParser.parseString(line.substring(6)).getAsJsonObject().get("id").getAsString();
                }
            }
        }

        private void step(int n) throws Exception {
            String text = " fix-" + n + "-" + r.nextInt(1000);
            switch (r.nextInt(7)) {
                case 0, 1 -> {  // a live steer, then a stop (a rejection)
                    Iterator<String> lines = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                            .POST(HttpRequest.BodyPublishers.ofString("{\"stream\":true,\"temperature\":0,\"ignore_eos\":true,"
                                    + "\"max_tokens\":100000,\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}")).build(),
                            HttpResponse.BodyHandlers.ofLines()).body().iterator();
                    String id = firstId(lines);
                    for (int i = 0; i < 3; i++) {
                        lines.next();
                    }
                    HttpResponse<String> s = post(port, "/v1/chat/completions/" + id + "/steer", "{\"at\":1,\"text\":\"" + text + "\"}");
                    steered(s);
                    HttpResponse<String> stop = post(port, "/v1/chat/completions/" + id + "/stop", "{}");
                    if (stop.statusCode() == 200) {
                        acknowledged(JsonParser.parseString(stop.body()).getAsJsonObject(), "correction");
                    }
                }
                case 2 -> {  // a steer on a finished answer: acknowledged by the steer chunk of its stream
                    String body = post(port, "/v1/chat/completions", "{\"stream\":true,\"temperature\":0,\"max_tokens\":4,"
                            + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}").body();
                    String id = firstId(body.lines().iterator());
                    steered(post(port, "/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + text + "\",\"max_tokens\":2}"));
                }
                case 3 -> {  // tag or delete an acknowledged record
                    List<String> ids = List.copyOf(acked.records.keySet());
                    if (!ids.isEmpty()) {
                        String id = ids.get(r.nextInt(ids.size()));
                        if (r.nextBoolean()) {
                            String tag = "t" + n;
                            if (post(port, "/v1/steers/" + id + "/tags", "{\"tags\":[\"" + tag + "\"]}").statusCode() == 200) {
                                acked.tags.computeIfAbsent(id, k -> java.util.concurrent.ConcurrentHashMap.newKeySet()).add(tag);
                            }
                        } else {
                            // While the delete is in flight the record may or may not go: it is checked neither way.
                            String correction = acked.records.remove(id);
                            if (t(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/steers/" + id)).DELETE()).statusCode() == 200) {
                                acked.deleted.add(id);
                            } else {
                                acked.records.put(id, correction);
                            }
                        }
                    }
                }
                case 4 -> {  // a short job that registers an adapter (not activated: activations are this client's)
                    HttpResponse<String> j = post(port, "/v1/fine_tuning/jobs", "{\"hyperparameters\":{\"n_epochs\":1,\"batch_size\":1},"
                            + "\"eval\":{\"auto_activate\":false}}");
                    if (j.statusCode() == 200) {
                        acked.jobs.add(JsonParser.parseString(j.body()).getAsJsonObject().get("id").getAsString());
                    }
                }
                default -> {  // activate a version (or the base model), or roll back
                    JsonObject list = get(port, "/v1/adapters");
                    List<String> versions = new java.util.ArrayList<>(List.of("base"));
                    list.getAsJsonArray("data").forEach(v -> versions.add(v.getAsJsonObject().get("id").getAsString()));
                    acked.activationInFlight = true;
                    HttpResponse<String> a = r.nextInt(3) == 0 ? post(port, "/v1/adapters/rollback", "")
                            : post(port, "/v1/adapters/" + versions.get(r.nextInt(versions.size())) + "/activate", "");
                    if (a.statusCode() == 200) {
                        com.google.gson.JsonElement now = JsonParser.parseString(a.body()).getAsJsonObject().get("active");
                        acked.active = now.isJsonNull() ? null : now.getAsString();
                        acked.activations.incrementAndGet();
                    }
                    acked.activationInFlight = false;
                }
            }
        }

        private HttpResponse<String> t(HttpRequest.Builder b) throws Exception {
            return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        }
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
