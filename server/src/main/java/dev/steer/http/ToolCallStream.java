package dev.steer.http;

import dev.steer.llama.ChatTemplates;
import java.util.ArrayList;
import java.util.List;

/**
 * One streamed choice of an answer with tools, read as it grows (llama.cpp's partial parse of the text so far, as
 * llama-server streams): what is new since the last chunk, as OpenAI's deltas. A call is announced once its function
 * name is known (index, id, type, name and the arguments so far), then its arguments follow in fragments. Only what
 * extends what was sent is sent: a client that concatenates the fragments gets the arguments of the finished answer.
 */
final class ToolCallStream {
    /** What a chunk carries: new text (null: none) and call deltas (empty: none). */
    record Update(String content, List<ToolCalls.CallDelta> calls) {
        boolean isEmpty() {
            return content == null && calls.isEmpty();
        }
    }

    /** A call already announced: its id, and how much of its arguments was sent. */
    private record Sent(String id, String name, String arguments) {}

    private final ChatTemplates.Rendered rendered;
    private final StringBuilder text = new StringBuilder();
    private String contentSent = "";
    private final List<Sent> sent = new ArrayList<>();

    ToolCallStream(ChatTemplates.Rendered rendered) {
        this.rendered = rendered;
    }

    /** {@code piece} of the answer was generated: the deltas it makes. */
    Update append(String piece) {
        text.append(piece);
        return diff(ToolCalls.parse(rendered, text.toString(), true));
    }

    /**
     * The answer ended: the deltas still owed (the whole parse may read what the partial one held back), and the calls
     * with the ids the stream gave them.
     */
    Update finish() {
        return diff(ToolCalls.parse(rendered, text.toString(), false));
    }

    /** Whether any call was announced (the finish reason is then "tool_calls"). */
    boolean hasCalls() {
        return !sent.isEmpty();
    }

    /**
     * A steer rewrote the answer to {@code now}. The steer chunk tells the client (its {@code content} is the answer's
     * text, call markup included); a call this stream had announced is taken as sent as it now reads, keeps its id, and
     * its later fragments continue it. A call not announced yet (a continuation streamed after the answer ended starts
     * with none) is announced with the next chunk, its arguments so far included.
     */
    void steered(String now) {
        text.setLength(0);
        text.append(now);
        ToolCalls.Parsed p = ToolCalls.parse(rendered, now, true);
        contentSent = p.content() == null ? "" : p.content();
        List<Sent> kept = new ArrayList<>();
        if (p.hasCalls()) {
            for (int i = 0; i < p.calls().size(); i++) {
                ToolCalls.Function f = p.calls().get(i).function();
                if (i >= sent.size() || f.name().isEmpty()) {
                    break;
                }
                kept.add(new Sent(sent.get(i).id(), f.name(), f.arguments()));
            }
        }
        sent.clear();
        sent.addAll(kept);
    }

    private Update diff(ToolCalls.Parsed p) {
        String content = null;
        String c = p.content() == null ? "" : p.content();
        if (c.length() > contentSent.length() && c.startsWith(contentSent)) {
            content = c.substring(contentSent.length());
            contentSent = c;
        }
        List<ToolCalls.CallDelta> deltas = new ArrayList<>();
        List<ToolCalls.Call> calls = p.hasCalls() ? p.calls() : List.of();
        for (int i = 0; i < calls.size(); i++) {
            ToolCalls.Function f = calls.get(i).function();
            if (i < sent.size()) {
                Sent s = sent.get(i);
                if (f.arguments().length() > s.arguments().length() && f.arguments().startsWith(s.arguments())) {
                    deltas.add(new ToolCalls.CallDelta(i, null, null,
                            new ToolCalls.FunctionDelta(null, f.arguments().substring(s.arguments().length()))));
                    sent.set(i, new Sent(s.id(), s.name(), f.arguments()));
                }
            } else if (i == sent.size() && !f.name().isEmpty()) {
                Sent s = new Sent(ToolCalls.newId(), f.name(), f.arguments());
                sent.add(s);
                deltas.add(new ToolCalls.CallDelta(i, s.id(), "function", new ToolCalls.FunctionDelta(f.name(), f.arguments())));
            }
        }
        return new Update(content, deltas);
    }
}
