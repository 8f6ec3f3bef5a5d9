package dev.steer.http;

import dev.steer.llama.LlamaModel;
import io.javalin.Javalin;
import io.javalin.json.JavalinGson;
import java.util.Map;

/** The HTTP API, as a table of routes. */
public final class ApiServer {
    private final Javalin app;

    private ApiServer(Javalin app) {
        this.app = app;
    }

    public static ApiServer start(String host, int port, String modelId, LlamaModel model) {
        Javalin app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.jsonMapper(new JavalinGson());
            config.routes.get("/health", ctx -> ctx.json(Map.of("status", "ok", "model", modelId)));
        });
        app.start(host, port);
        return new ApiServer(app);
    }

    public int port() {
        return app.port();
    }

    public void stop() {
        app.stop();
    }
}
