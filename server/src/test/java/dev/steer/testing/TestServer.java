package dev.steer.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.Server;
import dev.steer.engine.Engine;
import dev.steer.http.ApiServer;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.LongSupplier;

/** A live server (engine, stores, training, HTTP API) on a free local port and a fresh data directory, for tests. */
public final class TestServer implements AutoCloseable {
    public final Server server;
    public final Engine engine;
    public final ChatTemplates templates;
    public final String modelId;
    public final SteerStore store;
    public final Sessions sessions;
    public final Path dataDir;
    private final HttpClient http = HttpClient.newHttpClient();

    public TestServer(LlamaModel model, String modelId, int parallel, String apiKey) {
        this(model, "test-model-sha256", modelId, parallel, apiKey, tempDir());
    }

    public TestServer(LlamaModel model, String modelSha256, String modelId, int parallel, String apiKey, Path dataDir) {
        this(model, modelSha256, dataDir, new Engine.Config(parallel, 4096, 256, 2, 16), 60_000, Sessions.DEFAULT_MAX, api(modelId, apiKey),
                System::currentTimeMillis);
    }

    /**
     * For a test that needs other limits: its own engine config, session TTL, API options, and the clock sessions
     * expire by.
     */
    public TestServer(LlamaModel model, Engine.Config engine, long sessionTtlMillis, ApiServer.Options api, LongSupplier clock) {
        this(model, "test-model-sha256", tempDir(), engine, sessionTtlMillis, Sessions.DEFAULT_MAX, api, clock);
    }

    /** As above, holding at most {@code maxSessions} steerable sessions ({@code --max-sessions}). */
    public TestServer(LlamaModel model, Engine.Config engine, long sessionTtlMillis, int maxSessions, ApiServer.Options api,
                      LongSupplier clock) {
        this(model, "test-model-sha256", tempDir(), engine, sessionTtlMillis, maxSessions, api, clock);
    }

    private TestServer(LlamaModel model, String modelSha256, Path dataDir, Engine.Config engine, long sessionTtlMillis,
                       int maxSessions, ApiServer.Options api, LongSupplier clock) {
        this.modelId = api.modelId();
        this.dataDir = dataDir;
        this.server = new Server(model, new Server.Config(modelSha256, dataDir.resolve("steers.db"), dataDir.resolve("adapters"),
                sessionTtlMillis, null, 2, engine, api, maxSessions, SteerStore.DEFAULT_KEEP_ACCEPTED, false), clock);
        this.engine = server.engine;
        this.templates = server.templates;
        this.store = server.steers;
        this.sessions = server.sessions;
    }

    /** The API options tests use unless they say otherwise: local, any CORS origin, 64 KiB bodies, /metrics behind the key. */
    public static ApiServer.Options api(String modelId, String apiKey) {
        return new ApiServer.Options("127.0.0.1", 0, modelId, apiKey, List.of("*"), 64 * 1024, false);
    }

    private static Path tempDir() {
        try {
            return Files.createTempDirectory("steer-test-data");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String base() {
        return "http://127.0.0.1:" + server.port();
    }

    /** Every request is bounded: a test waits at most this long for an answer. */
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(120);

    public HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).timeout(REQUEST_TIMEOUT)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> delete(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).timeout(REQUEST_TIMEOUT).DELETE().build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).timeout(REQUEST_TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** GET with "Authorization: Bearer apiKey", for a server started with a key. */
    public HttpResponse<String> get(String path, String apiKey) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).timeout(REQUEST_TIMEOUT)
                .header("Authorization", "Bearer " + apiKey).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Asserts an OpenAI-shaped error with {@code status} and returns its {@code error} object. */
    public static JsonObject assertApiError(HttpResponse<String> r, int status) {
        assertEquals(status, r.statusCode(), r.body());
        JsonObject e = JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error");
        assertTrue(e.has("message") && e.has("type") && e.has("param") && e.has("code"), r.body());
        return e;
    }

    @Override
    public void close() {
        server.close();
    }
}
