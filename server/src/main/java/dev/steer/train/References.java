package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The base model's side of examples, kept between jobs: each example's reference ({@link LoraTrainer#reference}: the
 * adapter off) and the input of its first adapted block ({@link LoraTrainer#keptInput}: the blocks below, which no
 * job changes). Both depend only on the model, the example and where the adapted blocks begin, never on a job's
 * LoRA, seed or rank, so one trainer's numbers serve every later one. Kept: the built-in replay and probe examples
 * (every job has them) and the answers a person steered or let run, computed in the background while they steer
 * ({@link JobRunner#prepare}) or by the job that first needed them. A job that finds its examples here computes
 * neither a reference nor the lower blocks for them: about 13 s of a SmolLM2-135M job on 2 cores with 50 steers
 * (docs/training.md "Measured").
 *
 * <p>Bounded by bytes ({@link #DEFAULT_MAX_BYTES}), the least recently used dropped first; the preparation drops
 * what no job would read any more ({@link #retainOnly}: an answer steered again is a new example) and stops when the
 * rest is full ({@link #hasRoomFor}), so that a server with more answers than room does not compute the same ones
 * again after every record. The references and inputs handed out are shared: callers read them and never write into
 * their arrays.
 */
final class References {
    /** Enough for ~300 answers of a 135M model's, ~100 of a 1B model's (~0.45 MB and ~1.4 MB an answer). */
    static final long DEFAULT_MAX_BYTES = 128L << 20;

    private record Key(int firstAdapted, int fork, String example) {}

    private record Kept(LoraTrainer.Reference reference, float[] input) {
        long bytes() {
            return 4L * (reference.keepIds().length + reference.keepProbs().length + input.length) + 256;
        }
    }

    private final long maxBytes;
    private final Map<Key, Kept> kept = new LinkedHashMap<>(64, 0.75f, true);  // access order: the eldest is the least recently used
    private long bytes;

    References() {
        this(DEFAULT_MAX_BYTES);
    }

    References(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    private static Key key(int firstAdapted, LoraTrainer.Example e) {
        return new Key(firstAdapted, e.fork(), Arrays.toString(e.tokens()) + Arrays.toString(e.roles()) + Arrays.toString(e.rejected()));
    }

    /**
     * The reference of {@code e}, kept for {@code t}'s first adapted block ({@link LoraTrainer#firstAdapted}), or
     * computed by {@code t} and kept. Either way {@code t} then holds {@code e}'s first adapted block's input (kept:
     * handed to it). One call at a time: a job that asks while the preparation computes waits for that one example.
     */
    synchronized LoraTrainer.Reference reference(LoraTrainer t, LoraTrainer.Example e) {
        Key k = key(t.firstAdapted(), e);
        Kept found = kept.get(k);
        if (found != null) {
            if (found.input().length > 0) {
                t.keepInput(e, found.input());
            }
            return found.reference();
        }
        Kept made = new Kept(t.reference(e), t.keptInput(e));
        kept.put(k, made);
        bytes += made.bytes();
        for (Iterator<Kept> eldest = kept.values().iterator(); bytes > maxBytes && eldest.hasNext(); ) {
            bytes -= eldest.next().bytes();
            eldest.remove();
        }
        return made.reference();
    }

    /** Whether {@code e}'s reference is kept (without touching its place in the order). */
    synchronized boolean has(int firstAdapted, LoraTrainer.Example e) {
        return kept.containsKey(key(firstAdapted, e));
    }

    /**
     * Drops what is kept for other examples than {@code wanted} (an answer steered again is a new example; an answer
     * let run leaves the replay set as newer ones come): the room goes to what a job would read now.
     */
    synchronized void retainOnly(int firstAdapted, Collection<LoraTrainer.Example> wanted) {
        Set<Key> keys = new HashSet<>();
        wanted.forEach(e -> keys.add(key(firstAdapted, e)));
        for (Iterator<Map.Entry<Key, Kept>> i = kept.entrySet().iterator(); i.hasNext(); ) {
            Map.Entry<Key, Kept> entry = i.next();
            if (!keys.contains(entry.getKey())) {
                bytes -= entry.getValue().bytes();
                i.remove();
            }
        }
    }

    /**
     * Whether {@code e} would be kept without dropping another (at most a keep row per token: 256 ids and probabilities
     * each, and {@code embd} floats a token of input). A preparation stops there rather than drop what it kept
     * before, which the next record would have it compute again.
     */
    synchronized boolean hasRoomFor(LoraTrainer.Example e, int embd) {
        long tokens = e.tokens().length + e.rejected().length;
        return bytes + tokens * (8L * LoraTrainer.REFERENCE_TOP_K + 4L * embd) + 256 <= maxBytes;
    }

    /** How many references are kept (for tests). */
    synchronized int size() {
        return kept.size();
    }

    /** Their bytes, as counted against the bound (for tests). */
    synchronized long bytes() {
        return bytes;
    }
}
