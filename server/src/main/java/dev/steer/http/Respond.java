package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.Generation;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
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
        whole(ctx, events, List.of(generation), shape);
    }

    /**
     * Waits for every choice ({@code generations}, in index order, all on {@code events}' queue), then answers with
     * one JSON object. Usage counts the prompt once (as OpenAI does) and the tokens of every choice.
     */
    static void whole(Context ctx, EventStream events, List<Generation> generations, ResponseShape shape) throws InterruptedException {
        int n = generations.size();
        List<StringBuilder> texts = new ArrayList<>();
        List<List<TokenEvent>> tokens = new ArrayList<>();
        ResponseShape.Result[] results = new ResponseShape.Result[n];
        for (int i = 0; i < n; i++) {
            texts.add(new StringBuilder());
            tokens.add(new ArrayList<>());
        }
        Usage usage = null;
        int finished = 0;
        while (finished < n) {
            switch (events.next()) {
                case EventStream.Token t -> {
                    texts.get(t.choice()).append(t.event().text());
                    tokens.get(t.choice()).add(t.event());
                }
                case EventStream.Steered st -> {
                    StringBuilder text = texts.get(st.choice());
                    text.setLength(0);
                    text.append(st.record().acceptedText()).append(st.record().correctionText());
                    tokens.get(st.choice()).clear();  // log-probs describe sampled tokens; the output was rewritten
                }
                case EventStream.Finished f -> {
                    results[f.choice()] = new ResponseShape.Result(texts.get(f.choice()).toString(), tokens.get(f.choice()), f.reason());
                    usage = add(usage, f.usage());
                    finished++;
                }
                case EventStream.Failed e -> {
                    generations.forEach(Generation::cancel);
                    throw ApiError.internal("generation failed: " + e.error().getMessage());
                }
            }
        }
        json(ctx, 200, shape.complete(List.of(results), usage));
    }

    /** The usage of several choices of one prompt: the first one's prompt counts, the generated tokens add up. */
    private static Usage add(Usage sum, Usage u) {
        return sum == null ? u : new Usage(sum.promptTokens(), sum.cachedTokens(), sum.completionTokens() + u.completionTokens());
    }

    static void stream(Context ctx, EventStream events, Generation generation, ResponseShape shape, boolean includeUsage)
            throws InterruptedException {
        stream(ctx, events, List.of(generation), shape, includeUsage);
    }

    /**
     * Streams {@code data: {chunk}\n\n} events and a final {@code data: [DONE]\n\n}, flushing each one; with several
     * choices their chunks interleave as they are generated, each naming its {@code index}, and [DONE] follows the
     * last one to finish. A write that fails means the client is gone: the generations are cancelled, which frees
     * their sequences within one decode step.
     */
    static void stream(Context ctx, EventStream events, List<Generation> generations, ResponseShape shape, boolean includeUsage)
            throws InterruptedException {
        int n = generations.size();
        try {
            OutputStream out = startEvents(ctx);
            for (int i = 0; i < n; i++) {
                send(out, shape.chunk(i, "", List.of(), null, true));
            }
            Usage usage = null;
            int finished = 0;
            while (finished < n) {
                switch (events.next()) {
                    case EventStream.Token t -> {
                        TokenEvent e = t.event();
                        if (!e.text().isEmpty() || e.top() != null) {
                            ResponseShape.Envelope chunk = shape.chunk(t.choice(), e.text(), List.of(e), null, false);
                            if (chunk != null) {
                                send(out, chunk);
                            }
                        }
                    }
                    case EventStream.Steered st -> send(out, shape.steerChunk(st.record(), n > 1 ? st.choice() : null));
                    case EventStream.Finished f -> {
                        send(out, shape.chunk(f.choice(), "", List.of(), f.reason() == FinishReason.CANCELLED ? FinishReason.STOP : f.reason(), false));
                        usage = add(usage, f.usage());
                        finished++;
                    }
                    case EventStream.Failed e -> {
                        generations.forEach(Generation::cancel);
                        send(out, ApiError.internal("generation failed: " + e.error().getMessage()).body());
                        write(out, "data: [DONE]\n\n");
                        return;
                    }
                }
            }
            if (includeUsage) {
                send(out, shape.usageChunk(usage));
            }
            write(out, "data: [DONE]\n\n");
        } catch (IOException clientGone) {
            generations.forEach(Generation::cancel);
        } catch (RuntimeException e) {
            // a chunk that could not be built (a tool call's partial parse): no reader is left for the generations
            generations.forEach(Generation::cancel);
            throw e;
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
