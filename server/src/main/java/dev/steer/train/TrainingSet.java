package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import dev.steer.steer.SteerPair;
import dev.steer.steer.SteerRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Steer records turned into training examples, split into a training part and a held-out part for the gate.
 *
 * <p>One <em>answer</em> becomes one example: the steers of one completion that build on each other (each later
 * fork lies after the earlier correction) are packed into one token sequence, the answer as the person left it:
 * the prompt (nothing learned), the model's text the person kept before each fork and the whole continuation they
 * let run after the last correction, its end token included ({@link LoraTrainer#KEEP}: stay the base model there),
 * and each correction ({@link LoraTrainer#LEARN}: imitate it). The whole continuation, not its first tokens: how
 * an answer the person approved goes on and ends is what tells an adapter where its other habits do not belong (a
 * closing line taught on comparisons said at the end of yes/no answers; measured in docs/training.md, the
 * twenty-seventh session). What a steer teaches is {@link SteerPair} (the
 * exports use the same): tokens a correction shares with the rejected output at its start are kept, not learned;
 * the rejected output of the last fork, cut to that correction's length, is the preference term's other side.
 * A stop (a "rejection": the person cut the answer and wrote nothing; a person stops a stream that has started to
 * loop or run on) that ends an answer teaches what the job reads into it ({@link Hyperparameters.Stops}): nothing,
 * that the answer ends there (its end-of-turn token learned after the text the person kept, {@link
 * SteerPair#of(SteerRecord, int)}), or "not this, here" (the first token the model went on with, {@link
 * LoraTrainer#AVOID} after that text). A stop that a later steer of the same answer went past is superseded by it.
 *
 * <p>The split is by answer (steers of one answer are never on both sides), seeded, so the same steers and seed
 * give the same split. An answer whose only lesson is a token to avoid has no fork for the gate to replay: it
 * always trains.
 */
public record TrainingSet(List<Item> train, List<Item> heldOut) {
    /**
     * @param steerIds the steers packed into this example, in order
     * @param forks    each steer's own fork, for the gate's correction rate
     */
    public record Item(List<String> steerIds, LoraTrainer.Example example, List<Fork> forks) {
        /** The first steer's id (ties of the split's content order are broken by it). */
        public String steerId() {
            return steerIds.get(0);
        }
    }

    /** One steer as the gate replays it: from {@code context}, does the model now say {@code correction}? */
    public record Fork(String steerId, int[] context, int[] correction) {}

    /**
     * What a stop teaches: how it is read, and the model's end-of-turn token ({@link Hyperparameters.Stops#END} learns it).
     */
    public record StopReading(Hyperparameters.Stops stops, int endOfTurn) {
        public static final StopReading IGNORE = new StopReading(Hyperparameters.Stops.IGNORE, -1);

        /** The token the end reading teaches, -1 for the others (SteerPair then gives a stop no correction). */
        int learnedEnd() {
            return stops == Hyperparameters.Stops.END ? endOfTurn : -1;
        }

        /** Whether a stop teaches anything: read at all, and a lesson ({@link SteerPair#stopTeaches}). */
        boolean teaches(SteerRecord stop) {
            return stops != Hyperparameters.Stops.IGNORE && SteerPair.stopTeaches(stop, endOfTurn);
        }
    }

    public static TrainingSet split(List<SteerRecord> records, double heldOutFraction, long seed, StopReading stops) {
        List<Item> items = new ArrayList<>();
        List<Item> alwaysTrain = new ArrayList<>();  // no fork to hold out: only a token to avoid
        for (List<SteerRecord> answer : answers(records, stops)) {
            Item i = item(answer, stops);
            if (i != null) {
                (i.forks().isEmpty() ? alwaysTrain : items).add(i);
            }
        }
        // Ordered by content before the seeded shuffle, so the same answers give the same split even when recorded
        // again (steer ids are random: ordered by them, each recording held out different answers).
        items.sort(Comparator.comparing((Item i) -> i.example().tokens(), java.util.Arrays::compare).thenComparing(Item::steerId));
        Collections.shuffle(items, new Random(seed));
        int held = 0;
        if (items.size() >= 2 && heldOutFraction > 0) {
            held = Math.min(items.size() - 1, Math.max(1, (int) Math.round(items.size() * heldOutFraction)));
        }
        List<Item> train = new ArrayList<>(items.subList(held, items.size()));
        train.addAll(alwaysTrain);
        return new TrainingSet(List.copyOf(train), List.copyOf(items.subList(0, held)));
    }

    /**
     * The steers grouped into answers: per session, in the order they were made, a steer joins the answer before
     * it when its context (prompt + kept output) starts with that answer's last context + correction, i.e. it
     * forks later in the text the person left. A steer that cut back into an earlier correction starts its own.
     * Stops are among them only where they teach.
     */
    static List<List<SteerRecord>> answers(List<SteerRecord> records, StopReading stops) {
        Map<String, List<SteerRecord>> bySession = new LinkedHashMap<>();
        records.stream()
                .filter(r -> r.kind().equals("steer") ? r.correctionTokens() != null && r.correctionTokens().length > 0
                        : r.kind().equals("rejection") && stops.teaches(r))
                .sorted(Comparator.comparingLong(SteerRecord::createdAt).thenComparing(SteerRecord::id))
                .forEach(r -> bySession.computeIfAbsent(r.sessionId(), k -> new ArrayList<>()).add(r));
        List<List<SteerRecord>> out = new ArrayList<>();
        for (List<SteerRecord> steers : bySession.values()) {
            List<List<SteerRecord>> open = new ArrayList<>();
            for (SteerRecord r : steers) {
                int[] ctx = concat(r.promptTokens(), r.acceptedTokens());
                List<SteerRecord> joined = null;
                for (List<SteerRecord> a : open) {
                    SteerRecord last = a.get(a.size() - 1);
                    if (startsWith(ctx, concat(last.promptTokens(), last.acceptedTokens(), last.correctionTokens()))) {
                        joined = a;
                        break;
                    }
                }
                if (joined == null) {
                    joined = new ArrayList<>();
                    open.add(joined);
                    out.add(joined);
                }
                joined.add(r);
            }
        }
        return out;
    }

    /**
     * One answer's example, or null when it teaches nothing (none of its corrections differs from what the model had
     * said, and it ends in no stop that teaches). The answer as the person left it: its last steer's context and
     * correction (a stop's: the end of turn, or the token to avoid), then what they let run.
     */
    static Item item(List<SteerRecord> answer, StopReading stops) {
        int endOfTurn = stops.learnedEnd();
        SteerRecord last = answer.get(answer.size() - 1);
        boolean avoid = last.kind().equals("rejection") && stops.stops() == Hyperparameters.Stops.AVOID;
        SteerPair end = SteerPair.of(last, endOfTurn);
        int[] tokens = avoid ? concat(end.prompt(), end.kept(), new int[] {last.rejectedTokens()[0]})
                : concat(end.prompt(), end.kept(), end.chosen(), end.continuation());
        byte[] roles = new byte[tokens.length];
        Arrays.fill(roles, last.promptTokens().length, roles.length, LoraTrainer.KEEP);
        if (avoid) {
            roles[roles.length - 1] = LoraTrainer.AVOID;
        }
        List<Fork> forks = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        int fork = -1;
        int[] rejected = new int[0];
        for (SteerRecord r : answer) {
            SteerPair pair = SteerPair.of(r, endOfTurn);
            ids.add(r.id());
            if (!pair.teaches() || r.kind().equals("rejection") && r != last) {
                continue;  // the correction only repeats what the model said, or a later steer went past this stop
            }
            fork = pair.fork();
            Arrays.fill(roles, fork, fork + pair.chosen().length, LoraTrainer.LEARN);
            rejected = pair.rejected();
            forks.add(new Fork(r.id(), Arrays.copyOf(tokens, fork), pair.chosen()));
        }
        if (forks.isEmpty() && !avoid) {
            return null;
        }
        if (rejected.length == 0) {
            fork = -1;
        }
        return new Item(List.copyOf(ids), new LoraTrainer.Example(tokens, roles, fork, rejected), List.copyOf(forks));
    }

    /** Batches of {@code size} examples of similar length (sorted by length, so little of a batch is padding in time). */
    public static <T> List<List<T>> batches(List<T> items, int size, java.util.function.ToIntFunction<T> length, Random shuffle) {
        List<T> sorted = new ArrayList<>(items);
        sorted.sort(Comparator.comparingInt(length));
        List<List<T>> out = new ArrayList<>();
        for (int i = 0; i < sorted.size(); i += size) {
            List<T> b = new ArrayList<>(sorted.subList(i, Math.min(sorted.size(), i + size)));
            // Every batch has the same size: AdamW's state belongs to one accumulation period, so the short last
            // batch is filled with examples from the start.
            for (int j = 0; b.size() < size; j++) {
                b.add(sorted.get(j % sorted.size()));
            }
            out.add(b);
        }
        Collections.shuffle(out, shuffle);
        return out;
    }

    /** Tokens one training pass over the examples computes: each answer once, then its rejected span. */
    public static int tokens(List<LoraTrainer.Example> batch) {
        int n = 0;
        for (LoraTrainer.Example e : batch) {
            n += e.tokens().length + e.rejected().length;
        }
        return n;
    }

    static boolean startsWith(int[] a, int[] prefix) {
        return a.length >= prefix.length && Arrays.equals(a, 0, prefix.length, prefix, 0, prefix.length);
    }

    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) {
            n += p.length;
        }
        int[] out = new int[n];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
