package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.Generation;
import dev.steer.engine.TokenEvent;
import dev.steer.json.Json;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Writes a running generation to the client: as server-sent events, or as one JSON body at the end. */
final class Respond {
    private Respond() {}

    /** {@code body} (a response record, or a tree) written by {@link Json}'s rules. */
    static void json(Context ctx, int status, Object body) {
        ctx.status(status).contentType("application/json").result(Json.write(body));
    }

    /** Waits for the whole generation, then answers with one JSON object. */
    static void whole(Context ctx, EventStream events, Generation generation, ResponseShape shape) throws InterruptedException {
        StringBuilder text = new StringBuilder();
        List<TokenEvent> tokens = new ArrayList<>();
        while (true) {
            switch (events.next()) {
                case EventStream.Token t -> {
                    text.append(t.event().text());
                    tokens.add(t.event());
                }
                case EventStream.Steered st -> {
                    text.setLength(0);
                    text.append(st.record().acceptedText()).append(st.record().correctionText());
                    tokens.clear();  // log-probs describe sampled tokens; the output was rewritten
                }
                case EventStream.Finished f -> {
                    json(ctx, 200, shape.complete(text.toString(), tokens, f.reason(), f.usage()));
                    return;
                }
                case EventStream.Failed e -> throw ApiError.internal("generation failed: " + e.error().getMessage());
            }
        }
    }

    /**
     * Streams {@code data: {chunk}\n\n} events and a final {@code data: [DONE]\n\n}, flushing each one. A write that
     * fails means the client is gone: the generation is cancelled, which frees its sequence within one decode step.
     */
    static void stream(Context ctx, EventStream events, Generation generation, ResponseShape shape, boolean includeUsage)
            throws InterruptedException {
        ctx.status(200);
        ctx.res().setContentType("text/event-stream; charset=utf-8");
        ctx.res().setHeader("Cache-Control", "no-cache");
        ctx.res().setHeader("X-Accel-Buffering", "no");
        try {
            OutputStream out = ctx.res().getOutputStream();
            send(out, shape.chunk("", List.of(), null, true));
            while (true) {
                switch (events.next()) {
                    case EventStream.Token t -> {
                        TokenEvent e = t.event();
                        if (!e.text().isEmpty() || e.top() != null) {
                            send(out, shape.chunk(e.text(), List.of(e), null, false));
                        }
                    }
                    case EventStream.Steered st -> send(out, shape.steerChunk(st.record()));
                    case EventStream.Finished f -> {
                        send(out, shape.chunk("", List.of(), f.reason() == FinishReason.CANCELLED ? FinishReason.STOP : f.reason(), false));
                        if (includeUsage) {
                            send(out, shape.usageChunk(f.usage()));
                        }
                        write(out, "data: [DONE]\n\n");
                        return;
                    }
                    case EventStream.Failed e -> {
                        send(out, ApiError.internal("generation failed: " + e.error().getMessage()).body());
                        write(out, "data: [DONE]\n\n");
                        return;
                    }
                }
            }
        } catch (IOException clientGone) {
            generation.cancel();
        }
    }

    /** Starts an SSE response (events are then written with {@link #send}). */
    static OutputStream startEvents(Context ctx) throws IOException {
        ctx.status(200);
        ctx.res().setContentType("text/event-stream; charset=utf-8");
        ctx.res().setHeader("Cache-Control", "no-cache");
        ctx.res().setHeader("X-Accel-Buffering", "no");
        return ctx.res().getOutputStream();
    }

    static void send(OutputStream out, Object chunk) throws IOException {
        write(out, "data: " + Json.write(chunk) + "\n\n");
    }

    static void write(OutputStream out, String s) throws IOException {
        out.write(s.getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

}
