package dev.steer.http;

import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.engine.EngineUnavailableException;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.ChatTemplates;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerStore;
import dev.steer.train.JobRunner;
import dev.steer.train.JobStore;
import io.javalin.Javalin;
import io.javalin.config.JavalinState;
import io.javalin.plugin.Plugin;
import io.javalin.http.staticfiles.Location;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.json.JavalinGson;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import org.eclipse.jetty.http.HttpException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The HTTP API, as a table of routes, and the mapping of every failure to an OpenAI-style error. */
public final class ApiServer {
    private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
    /**
     * @param apiKey          required as "Authorization: Bearer KEY" on /v1/* (and /metrics) when not null
     * @param corsOrigins     origins allowed to call from a browser ("*" for any); empty: no CORS headers
     * @param maxRequestBytes larger bodies get 413
     * @param publicMetrics   serve /metrics without the API key (for a scraper that cannot send one)
     * @param decodeStepTimeout /health reports the decode loop stuck once one of its steps has run longer
     * @param steerTimeout    how long a steer on a running completion waits for the decode thread to apply it
     */
    public record Options(String host, int port, String modelId, String apiKey, List<String> corsOrigins, long maxRequestBytes,
                          boolean publicMetrics, Duration decodeStepTimeout, Duration steerTimeout) {
        public static final Duration DECODE_STEP_TIMEOUT = Duration.ofSeconds(30);
        public static final Duration STEER_TIMEOUT = Duration.ofSeconds(60);

        /** With the default timeouts. */
        public Options(String host, int port, String modelId, String apiKey, List<String> corsOrigins, long maxRequestBytes,
                       boolean publicMetrics) {
            this(host, port, modelId, apiKey, corsOrigins, maxRequestBytes, publicMetrics, DECODE_STEP_TIMEOUT, STEER_TIMEOUT);
        }

        public static Options local(String modelId) {
            return new Options("127.0.0.1", 0, modelId, null, List.of(), 8 << 20, false);
        }

        public Options withTimeouts(Duration decodeStep, Duration steer) {
            return new Options(host, port, modelId, apiKey, corsOrigins, maxRequestBytes, publicMetrics, decodeStep, steer);
        }
    }

    /** What the routes serve from, in data-flow order. */
    public record Services(Engine engine, ChatTemplates templates, Sessions sessions, SteerStore steers, ServedAdapters served,
                           AdapterRegistry adapters, JobStore jobs, JobRunner training) {}

    private final Javalin app;

    private ApiServer(Javalin app) {
        this.app = app;
    }

    public static ApiServer start(Options o, Services s) {
        Engine engine = s.engine();
        Completions completions = new Completions(engine, s.templates(), s.served(), s.sessions(), s.steers());
        Responses responses = new Responses(completions, s.sessions(), engine.model(), s.served().baseModel());
        SteerRoutes steers = new SteerRoutes(engine, s.sessions(), s.steers(), completions, o.steerTimeout());
        FineTuningRoutes jobs = new FineTuningRoutes(s.training(), s.jobs(), o.modelId());
        AdapterRoutes adapters = new AdapterRoutes(s.adapters(), s.served());
        Javalin app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.jsonMapper(new JavalinGson());
            config.http.maxRequestSize = o.maxRequestBytes();
            config.concurrency.useVirtualThreads = true;  // a streaming response holds its thread for its lifetime
            // What Jetty refuses before a route runs (a path that is not UTF-8, huge headers) is in OpenAI's shape too.
            config.jetty.modifyServer(server -> server.setErrorHandler(new JettyErrors()));
            config.jetty.modifyServletContextHandler(handler -> handler.setErrorHandler(new JettyErrors()));
            if (!o.corsOrigins().isEmpty()) {
                config.bundledPlugins.enableCors(cors -> cors.addRule(rule -> {
                    if (o.corsOrigins().contains("*")) {
                        rule.anyHost();
                    } else {
                        rule.allowHost(o.corsOrigins().get(0), o.corsOrigins().subList(1, o.corsOrigins().size()).toArray(String[]::new));
                    }
                }));
            }

            // The console (docs/console.md): static HTML/CSS/JS from the jar, outside /v1, so the page itself loads
            // without the key and then asks for it; every call it makes goes through /v1 and the key like any client.
            config.staticFiles.add(files -> {
                files.hostedPath = "/";
                files.directory = "/console";
                files.location = Location.CLASSPATH;
            });

            // The key and the body are checked after the CORS plugin's own before-handler has named the origin: an
            // error thrown by a before-handler skips those after it, and a 401 or 413 without
            // Access-Control-Allow-Origin reaches a page as a bare network error. Plugins add their handlers when
            // the server starts, in the order they were registered, after the routes added here; so these go in a
            // plugin registered after the CORS one.
            config.registerPlugin(new Plugin<Void>() {
                @Override
                public void onStart(JavalinState state) {
                    state.routes.before("/v1/*", ctx -> authorize(ctx, o.apiKey()));
                    state.routes.before(ApiServer::readBodyFirst);
                    // The counters tell an outsider how busy the server is and what it serves: behind the key too,
                    // unless the operator opens them for a scraper that cannot send one. /health stays open for
                    // liveness probes.
                    if (!o.publicMetrics()) {
                        state.routes.before("/metrics", ctx -> authorize(ctx, o.apiKey()));
                    }
                }
            });

            config.routes.get("/health", ctx -> health(ctx, engine, o));
            config.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4").result(Metrics.render(engine, s.sessions())));
            config.routes.get("/v1/models", ctx -> Respond.json(ctx, 200, models(s.served())));
            config.routes.get("/v1/models/{model}", ctx -> Respond.json(ctx, 200, model(ctx.pathParam("model"), s.served())));
            config.routes.post("/v1/chat/completions", completions::chat);
            config.routes.post("/v1/completions", completions::text);
            config.routes.post("/v1/chat/completions/{id}/steer", steers::steer);
            config.routes.post("/v1/chat/completions/{id}/stop", steers::stop);
            config.routes.post("/v1/responses", responses::create);
            config.routes.post("/v1/responses/{id}/steer", steers::steer);  // the same sessions: a response is steered by its id
            config.routes.post("/v1/responses/{id}/stop", steers::stop);
            config.routes.get("/v1/steers", steers::list);
            config.routes.get("/v1/steers/export", steers::export);
            config.routes.get("/v1/steers/{id}", steers::get);
            config.routes.delete("/v1/steers/{id}", steers::delete);
            config.routes.post("/v1/steers/{id}/tags", steers::tag);
            config.routes.post("/v1/steers/{id}/exclude", steers::exclude);
            config.routes.post("/v1/fine_tuning/jobs", jobs::create);
            config.routes.get("/v1/fine_tuning/jobs", jobs::list);
            config.routes.get("/v1/fine_tuning/jobs/{id}", jobs::get);
            config.routes.get("/v1/fine_tuning/jobs/{id}/events", jobs::events);
            config.routes.post("/v1/fine_tuning/jobs/{id}/cancel", jobs::cancel);
            config.routes.get("/v1/adapters", adapters::list);
            config.routes.post("/v1/adapters/rollback", adapters::rollback);
            config.routes.get("/v1/adapters/{version}", adapters::get);
            config.routes.delete("/v1/adapters/{version}", adapters::delete);
            config.routes.post("/v1/adapters/{version}/activate", adapters::activate);

            config.routes.exception(ApiError.class, (e, ctx) -> Respond.json(ctx, e.status, e.body()));
            config.routes.exception(EngineUnavailableException.class, (e, ctx) -> {
                ApiError err = new ApiError(503, "server_error", e.getMessage(), null, "engine_unavailable");
                Respond.json(ctx, err.status, err.body());
            });
            config.routes.exception(Sessions.FullException.class, (e, ctx) -> {  // any route that opens a session
                ApiError err = ApiError.busy(e.getMessage());
                Respond.json(ctx, err.status, err.body());
            });
            config.routes.exception(HttpResponseException.class, (e, ctx) -> {
                ApiError err = e.getStatus() == 413 ? ApiError.tooLarge(o.maxRequestBytes())
                        : new ApiError(e.getStatus(), "invalid_request_error", e.getMessage(), null, null);
                Respond.json(ctx, err.status, err.body());
            });
            config.routes.exception(Exception.class, (e, ctx) -> {
                ApiError unreadable = unreadableRequest(e);
                if (unreadable != null) {
                    Respond.json(ctx, unreadable.status, unreadable.body());
                    return;
                }
                LOG.error("{} {} failed", ctx.method(), ctx.path(), e);
                Respond.json(ctx, 500, ApiError.internal(e.getClass().getSimpleName() + ": " + e.getMessage()).body());
            });
            config.routes.error(404, ctx -> {
                if (ctx.result() == null || ctx.result().isEmpty()) {
                    Respond.json(ctx, 404, ApiError.notFound(ctx.path()).body());
                }
            });
        });
        app.start(o.host(), o.port());
        return new ApiServer(app);
    }

    /**
     * A request Jetty could not read (a malformed chunked body, a body cut short) surfaces where a route reads the
     * body, as an exception that carries Jetty's own 4xx status. The client's error, not a 500. An exception caused by
     * a full heap is a 503 (the server's state, not a bug). Null for any other.
     */
    private static ApiError unreadableRequest(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof OutOfMemoryError) {
                return ApiError.outOfMemory();  // wrapped by a library: a full heap, not the client's fault
            }
            if (t instanceof HttpException h && h.getCode() >= 400 && h.getCode() < 500) {
                return new ApiError(h.getCode(), "invalid_request_error", "The request body could not be read: " + t.getMessage() + ".",
                        null, "invalid_request_body");
            }
        }
        return null;
    }

    /**
     * GET /health: 200 {"status": "ok"} while the decode loop serves; 503 {"status": "stuck"} while its thread has been
     * inside one step longer than --decode-step-timeout-s, 503 {"status": "dead"} once it has died. Stuck is only
     * reported: a step inside llama_decode cannot be ended from outside without corrupting the context, and a
     * listener stuck on SQLite cannot be interrupted safely either. A probe that restarts the process on 503 is
     * the cure.
     */
    /** GET /health: "ok", "stuck" or "dead"; a reason unless ok; how long the current step has run. */
    record Health(String status, @OmitWhenNull String reason, String model, double stepSeconds) {}

    private static void health(Context ctx, Engine engine, Options o) {
        Throwable death = engine.death();
        double step = engine.stepNanos() / 1e9;
        Health h;
        if (death != null) {
            h = new Health("dead", "the decode thread died: " + death, o.modelId(), step);
        } else if (step > o.decodeStepTimeout().toNanos() / 1e9) {
            h = new Health("stuck", String.format(java.util.Locale.ROOT, "the decode thread has been inside one step for %.1f s (limit %.1f s)",
                    step, o.decodeStepTimeout().toMillis() / 1e3), o.modelId(), step);
        } else {
            h = new Health("ok", null, o.modelId(), step);
        }
        Respond.json(ctx, h.status().equals("ok") ? 200 : 503, h);
    }

    private static void authorize(Context ctx, String apiKey) {
        if (apiKey == null || ctx.method().name().equals("OPTIONS")) {
            return;
        }
        String header = ctx.header("Authorization");
        String given = header != null && header.startsWith("Bearer ") ? header.substring(7).trim() : "";
        // Constant-time comparison: the time taken says nothing about how much of the key was right.
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), apiKey.getBytes(StandardCharsets.UTF_8))) {
            discardBody(ctx);
            throw ApiError.unauthorized();
        }
    }

    /**
     * An answer written while the client still sends a large body was followed by the connection's close, and the
     * client got no byte of it ("header parser received no bytes": 40 of 2,400 49 KB requests answered 401 or 404
     * before their body was read; docs/reliability.md). So the body is read before anything answers: under /v1 (past
     * the key) kept, as every route that takes one reads it anyway, up to --max-request-bytes; a larger one is read on
     * and dropped before its 413 (9 of 400 2 MB bodies over a 256 KB limit lost their 413 otherwise); elsewhere, and
     * for a wrong key, read and thrown away, so that nobody without the key can make the server hold a body.
     */
    private static void readBodyFirst(Context ctx) {
        if (!ctx.path().startsWith("/v1/")) {
            discardBody(ctx);
            return;
        }
        if (ctx.contentLength() == 0) {
            return;
        }
        try {
            ctx.bodyAsBytes();  // Javalin refuses a body past the limit (config.http.maxRequestSize) with a 413
        } catch (HttpResponseException e) {
            if (e.getStatus() == 413) {
                discardBody(ctx);
            }
            throw e;
        }
    }

    /**
     * How much of a body nobody keeps is read before the answer: past it the answer may be lost, as above. Reading
     * costs the connection's time and an 8 KB buffer, not memory; the bound stops a client from holding a
     * connection's thread with an endless body.
     */
    private static final long DISCARDED_BODY_LIMIT = 64L << 20;

    /** Reads what is left of the body, up to {@link #DISCARDED_BODY_LIMIT}, into a small buffer and forgets it. */
    private static void discardBody(Context ctx) {
        if (ctx.contentLength() == 0) {
            return;
        }
        byte[] buffer = new byte[8192];
        long read = 0;
        try {
            InputStream in = ctx.req().getInputStream();
            for (int n; read <= DISCARDED_BODY_LIMIT && (n = in.read(buffer)) >= 0; ) {
                read += n;
            }
        } catch (IOException unreadable) {
            // The answer goes out all the same; the client stopped sending.
        }
    }

    record ModelList(String object, List<ModelJson> data) {}

    record ModelJson(String id, String object, long created, String ownedBy) {}

    /** The base model, then each adapter version as "base@vN". */
    private static ModelList models(ServedAdapters served) {
        return new ModelList("list", served.modelNames().stream().map(name -> model(name, served)).toList());
    }

    private static ModelJson model(String requested, ServedAdapters served) {
        if (!served.modelNames().contains(requested)) {
            throw ApiError.modelNotFound(requested);
        }
        return new ModelJson(requested, "model", 0, "steer");
    }

    public int port() {
        return app.port();
    }

    public void stop() {
        app.stop();
    }
}
