package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import dev.steer.steer.SteerRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * Steer records turned into training examples, split into a training part and a held-out part for the gate.
 *
 * <p>One steer = context (prompt + accepted output), chosen (the correction) and rejected (what the model had
 * generated past the fork). Where the correction and the rejected output begin with the same tokens, those tokens
 * are agreed on, not corrected: they move into the context. The rejected span is then cut to the chosen span's
 * length, so the preference compares the two continuations where they differ and over comparable lengths.
 * Stops without a correction ("rejection") teach nothing to imitate, and are left out.
 */
public record TrainingSet(List<Item> train, List<Item> heldOut) {
    public record Item(String steerId, LoraTrainer.Example example) {}

    public static TrainingSet split(List<SteerRecord> records, double heldOutFraction, long seed) {
        List<Item> items = new ArrayList<>();
        for (SteerRecord r : records) {
            if (r.kind().equals("steer")) {
                LoraTrainer.Example e = example(r);
                if (e != null) {
                    items.add(new Item(r.id(), e));
                }
            }
        }
        // A seeded shuffle over the ids (sorted first), so the same steers and seed give the same split.
        items.sort(Comparator.comparing(Item::steerId));
        Collections.shuffle(items, new Random(seed));
        int held = 0;
        if (items.size() >= 2 && heldOutFraction > 0) {
            held = Math.min(items.size() - 1, Math.max(1, (int) Math.round(items.size() * heldOutFraction)));
        }
        return new TrainingSet(List.copyOf(items.subList(held, items.size())), List.copyOf(items.subList(0, held)));
    }

    static LoraTrainer.Example example(SteerRecord r) {
        int[] correction = r.correctionTokens();
        int[] rejected = r.rejectedTokens();
        int common = 0;
        while (common < correction.length && common < rejected.length && correction[common] == rejected[common]) {
            common++;
        }
        if (common == correction.length) {
            return null;  // the correction only repeats what the model said: nothing to learn
        }
        int[] context = concat(r.promptTokens(), r.acceptedTokens(), Arrays.copyOf(correction, common));
        int[] chosen = Arrays.copyOfRange(correction, common, correction.length);
        int[] rest = Arrays.copyOfRange(rejected, common, rejected.length);
        int[] cut = Arrays.copyOf(rest, Math.min(rest.length, chosen.length));
        return new LoraTrainer.Example(context, chosen, cut);
    }

    /** Batches of {@code size} examples of similar length (sorted by length, so little of a batch is padding in time). */
    public static List<List<Item>> batches(List<Item> items, int size, Random shuffle) {
        List<Item> sorted = new ArrayList<>(items);
        sorted.sort(Comparator.comparingInt(i -> i.example().context().length + i.example().chosen().length));
        List<List<Item>> out = new ArrayList<>();
        for (int i = 0; i < sorted.size(); i += size) {
            List<Item> b = new ArrayList<>(sorted.subList(i, Math.min(sorted.size(), i + size)));
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

    /** Tokens one training pass over the batch computes: the context once, then the chosen and rejected spans. */
    public static int tokens(List<Item> batch) {
        int n = 0;
        for (Item i : batch) {
            LoraTrainer.Example e = i.example();
            n += e.context().length + e.chosen().length + e.rejected().length;  // the context is computed once for both spans
        }
        return n;
    }

    private static int[] concat(int[]... parts) {
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
