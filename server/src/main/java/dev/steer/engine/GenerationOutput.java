package dev.steer.engine;

import java.util.Arrays;

/**
 * A generation's output tokens (generated tokens and corrections, in order, from the request's {@code outputStart}):
 * the one copy of them. The decode thread is its only writer ({@link Slot}); any thread may read it, and a
 * {@link dev.steer.steer.Session} adopts the buffer of each generation it runs, so the HTTP side reads the very tokens
 * the engine cuts and positions in the KV cache.
 *
 * <p>Readers see a consistent prefix without a lock. Tokens live in an array whose first {@code length} entries never
 * change once published: an append writes past {@code length} and then publishes it with a volatile store, a full
 * array is copied into a bigger one, and a steer's cut writes a new array. A reader takes the current array holder
 * and then its length: whatever it gets is an output that existed.
 *
 * <p>A steer becomes visible only once it is reported (its fork decoded and its listener told, {@link #showSteer}):
 * until then readers see the output as it was before the cut, as they did when the session kept its own copy. A steer
 * whose generation fails before that is never shown: the output stays what the client last heard of.
 */
public final class GenerationOutput {
    /** An array and how much of it is output; entries below {@code length} are never written again. */
    private static final class Tokens {
        final int[] array;
        volatile int length;  // the writer's store publishes the entries below it

        Tokens(int[] array, int length) {
            this.array = array;
            this.length = length;
        }

        int[] copy() {
            int n = length;  // read once: the entries below it are final
            return Arrays.copyOf(array, n);
        }
    }

    private Tokens written;           // decode thread only: what the engine continues from
    private volatile Tokens visible;  // what readers see: {@code written}, except while a steer waits to be reported

    private GenerationOutput(Tokens written, Tokens visible) {
        this.written = written;
        this.visible = visible;
    }

    /** An output no generation writes: an answer as it stands (a session before its first generation, tests). */
    public static GenerationOutput of(int... tokens) {
        Tokens t = new Tokens(tokens.clone(), tokens.length);
        return new GenerationOutput(t, t);
    }

    /**
     * The output {@code r} starts with: its prompt from {@code outputStart} on (an answer it continues). A request
     * that continues an answer after a steer ({@link GenerationRequest#steer}) shows that answer as it was before the
     * steer (accepted + rejected) until the steer is reported.
     */
    static GenerationOutput startOf(GenerationRequest r) {
        int[] prompt = r.prompt();
        int n = prompt.length - r.outputStart();
        Tokens written = new Tokens(Arrays.copyOfRange(prompt, r.outputStart(), r.outputStart() + Math.max(16, 2 * n)), n);
        if (r.steer() == null) {
            return new GenerationOutput(written, written);
        }
        int[] before = r.steer().before();
        return new GenerationOutput(written, new Tokens(before, before.length));
    }

    // ---------------------------------------------------------------- readers, any thread

    /** The output as it stands: a copy. */
    public int[] tokens() {
        return visible.copy();
    }

    /** How many tokens {@link #tokens} would return now. */
    public int length() {
        return visible.length;
    }

    // ---------------------------------------------------------------- the writer: the decode thread

    int writtenLength() {
        return written.length;
    }

    /** Tokens {@code [from, to)} of the output the engine continues from (a steer pending included). */
    int[] written(int from, int to) {
        Tokens w = written;
        if (from < 0 || to > w.length || from > to) {
            throw new IndexOutOfBoundsException("[" + from + ", " + to + ") of " + w.length);
        }
        return Arrays.copyOfRange(w.array, from, to);
    }

    int writtenAt(int i) {
        Tokens w = written;
        if (i < 0 || i >= w.length) {
            throw new IndexOutOfBoundsException(i + " of " + w.length);
        }
        return w.array[i];
    }

    void append(int token) {
        Tokens w = written;
        int n = w.length;
        if (n == w.array.length) {
            // Readers may hold the full array: it stays as it is, and the tokens go on in a copy.
            Tokens bigger = new Tokens(Arrays.copyOf(w.array, Math.max(16, 2 * n)), n);
            if (visible == w) {
                visible = bigger;
            }
            written = w = bigger;
        }
        w.array[n] = token;
        w.length = n + 1;  // publishes the token
    }

    /**
     * A steer's cut: the output becomes its first {@code at} tokens and {@code correction}, in a new array (readers
     * of the old one keep a consistent output). Readers go on seeing the output before the cut until
     * {@link #showSteer}.
     */
    void cut(int at, int[] correction) {
        Tokens w = written;
        if (at < 0 || at > w.length) {
            throw new IndexOutOfBoundsException(at + " of " + w.length);
        }
        int n = at + correction.length;
        int[] a = Arrays.copyOf(w.array, Math.max(16, 2 * n));
        System.arraycopy(correction, 0, a, at, correction.length);
        written = new Tokens(a, n);
    }

    /** The steer is reported: readers see the output after it from now on. */
    void showSteer() {
        visible = written;
    }
}
