package dev.steer.testing;

import dev.steer.engine.Engine;
import dev.steer.http.ApiServer;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerStore;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;

/** A live server (engine + HTTP API) on a free local port, for tests. */
public final class TestServer implements AutoCloseable {
    public final Engine engine;
    public final ChatTemplates templates;
    public final ApiServer api;
    public final String modelId;
    public final SteerStore store;
    public final Sessions sessions = new Sessions(60_000);
    private final HttpClient http = HttpClient.newHttpClient();

    public TestServer(LlamaModel model, String modelId, int parallel, String apiKey) {
        this.modelId = modelId;
        this.engine = new Engine(model, new Engine.Config(parallel, 4096, 256, 2, 16));
        this.templates = ChatTemplates.forModel(model, null);
        try {
            this.store = SteerStore.open(java.nio.file.Files.createTempDirectory("steer-test-db").resolve("steers.db"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        this.api = ApiServer.start(new ApiServer.Options("127.0.0.1", 0, modelId, apiKey, List.of("*"), 64 * 1024),
                engine, templates, sessions, store);
    }

    public String base() {
        return "http://127.0.0.1:" + api.port();
    }

    public HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> delete(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).DELETE().build(), HttpResponse.BodyHandlers.ofString());
    }

    public HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base() + path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Override
    public void close() {
        api.stop();
        engine.close();
        templates.close();
        store.close();
    }
}
