package dev.steer.http;

import dev.steer.engine.FinishReason;
import dev.steer.engine.Generation;
import dev.steer.json.Json;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;

/**
 * Writes a running generation as a Responses API answer: one {@code response} object at the end, or the typed
 * server-sent events OpenAI streams ({@code event: TYPE} + {@code data: {...}}, numbered by {@code sequence_number},
 * no {@code [DONE]}). The same {@link EventStream} as chat completions feeds it, steers included.
 */
final class ResponseEvents {
    private static final int OUTPUT = 0;   // output_index: the one message
    private static final int CONTENT = 0;  // content_index: its one output_text part

    private final OutputStream out;
    private int sequence;

    private ResponseEvents(OutputStream out) {
        this.out = out;
    }

    /** Waits for the whole generation, then answers with the response object. */
    static void whole(Context ctx, EventStream events, ResponseObjects shape) throws InterruptedException {
        StringBuilder text = new StringBuilder();
        while (true) {
            switch (events.next()) {
                case EventStream.Token t -> text.append(t.event().text());
                case EventStream.Steered st -> {
                    text.setLength(0);
                    text.append(st.record().acceptedText()).append(st.record().correctionText());
                }
                case EventStream.Finished f -> {
                    Respond.json(ctx, 200, shape.finished(text.toString(), f.reason(), f.usage()));
                    return;
                }
                case EventStream.Failed e -> throw ApiError.internal("generation failed: " + e.error().getMessage());
            }
        }
    }

    /**
     * Streams the events until the generation ends. A write that fails means the client is gone: the generation is
     * cancelled, which frees its sequence within one decode step.
     */
    static void stream(Context ctx, EventStream events, Generation generation, ResponseObjects shape) throws InterruptedException {
        try {
            new ResponseEvents(Respond.startEvents(ctx)).run(events, shape);
        } catch (IOException clientGone) {
            generation.cancel();
        }
    }

    private void run(EventStream events, ResponseObjects shape) throws IOException, InterruptedException {
        String item = shape.messageId();
        send(new ResponseObjects.Lifecycle("response.created", sequence, shape.inProgress()));
        send(new ResponseObjects.Lifecycle("response.in_progress", sequence, shape.inProgress()));
        send(new ResponseObjects.ItemEvent("response.output_item.added", sequence, OUTPUT, shape.message("in_progress", null)));
        send(new ResponseObjects.PartEvent("response.content_part.added", sequence, item, OUTPUT, CONTENT, ResponseObjects.part("")));
        StringBuilder text = new StringBuilder();
        while (true) {
            switch (events.next()) {
                case EventStream.Token t -> {
                    String delta = t.event().text();
                    if (!delta.isEmpty()) {
                        text.append(delta);
                        send(new ResponseObjects.TextDelta("response.output_text.delta", sequence, item, OUTPUT, CONTENT, delta, List.of()));
                    }
                }
                case EventStream.Steered st -> {
                    ResponseShape.SteerNote note = ResponseObjects.note(st.record());
                    text.setLength(0);
                    text.append(note.content());
                    send(new ResponseObjects.Steered("response.output_text.steered", sequence, item, OUTPUT, CONTENT, note));
                }
                case EventStream.Finished f -> {
                    String all = text.toString();
                    String status = ResponseObjects.status(f.reason());
                    send(new ResponseObjects.TextDone("response.output_text.done", sequence, item, OUTPUT, CONTENT, all, List.of()));
                    send(new ResponseObjects.PartEvent("response.content_part.done", sequence, item, OUTPUT, CONTENT, ResponseObjects.part(all)));
                    send(new ResponseObjects.ItemEvent("response.output_item.done", sequence, OUTPUT, shape.message(status, all)));
                    // OpenAI ends an answer cut by max_output_tokens with response.incomplete, any other with response.completed.
                    String end = f.reason() == FinishReason.LENGTH ? "response.incomplete" : "response.completed";
                    send(new ResponseObjects.Lifecycle(end, sequence, shape.finished(all, f.reason(), f.usage())));
                    return;
                }
                case EventStream.Failed e -> {
                    send(new ResponseObjects.ErrorEvent("error", sequence, "server_error", "generation failed: " + e.error().getMessage(), null));
                    send(new ResponseObjects.Lifecycle("response.failed", sequence, shape.failed()));
                    return;
                }
            }
        }
    }

    private void send(ResponseObjects.Event event) throws IOException {
        Respond.write(out, "event: " + event.type() + "\ndata: " + Json.write(event) + "\n\n");
        sequence++;
    }
}
