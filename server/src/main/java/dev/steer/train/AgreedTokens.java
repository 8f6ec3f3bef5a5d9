package dev.steer.train;

import dev.steer.llama.LoraTrainer;

/**
 * A correction's tokens that the base model would have written there itself are kept, not learned.
 *
 * <p>A person types "Step 2: Mix the flour" where the model wrote "2. Mix the flour": what they taught is "Step"
 * and maybe ": ", not "Mix the flour", which the base model says anyway once the line has begun. Cross-entropy on
 * every correction token trains the content too: it raises "Mix the flour" after "Step 2:", and after "Step 3:" (a
 * list that says one item again), and "learns from your corrections" wherever the model speaks of itself (v55's
 * loops, docs/training.md). {@link SteerPair} already keeps the tokens a correction shares with the rejected output
 * at its start; this goes on through the correction: each correction token the base model's greedy choice already
 * is, in the corrected context, moves from {@link LoraTrainer#LEARN} (cross-entropy) to {@link LoraTrainer#KEEP}
 * (the KL term, which holds the base's distribution there, whose first choice is that token). The tokens where the
 * base would have said something else are the ones learned.
 *
 * <p>One base forward per example decides it and gives the reference too: the example is referenced with every
 * correction token as a keep row, and the rows that stay learned are then dropped from that reference.
 *
 * @see dev.steer.steer.SteerPair
 */
final class AgreedTokens {
    private AgreedTokens() {}

    /**
     * @param example   the example with its correction tokens moved where the base agrees
     * @param reference the base model's reference for it (without the preference term's span log-probabilities:
     *                  a job with that term references the example again)
     * @param agreed    how many correction tokens moved
     * @param learned   how many stayed learned
     */
    record Reshaped(LoraTrainer.Example example, LoraTrainer.Reference reference, int agreed, int learned) {}

    static Reshaped keep(LoraTrainer t, LoraTrainer.Example e, int vocab) {
        byte[] probe = e.roles().clone();
        for (int i = 0; i < probe.length; i++) {
            if (probe[i] == LoraTrainer.LEARN) {
                probe[i] = LoraTrainer.KEEP;
            }
        }
        LoraTrainer.Reference all = t.reference(new LoraTrainer.Example(e.tokens(), probe, e.fork(), e.rejected()));
        final int k = LoraTrainer.REFERENCE_TOP_K;
        byte[] roles = e.roles().clone();
        int rows = 0;
        for (int i = 1; i < roles.length; i++) {
            if (probe[i] == LoraTrainer.KEEP) {
                rows++;
            }
        }
        int[] ids = new int[rows * k];
        float[] probs = new float[rows * k];
        int kept = 0, agreed = 0, learned = 0;
        double entropy = 0;
        for (int i = 1, row = 0; i < roles.length; i++) {
            if (probe[i] != LoraTrainer.KEEP) {
                continue;
            }
            if (roles[i] == LoraTrainer.LEARN) {
                // the reference's first token is the base's greedy choice on the row that predicts token i
                if (all.keepIds()[row * k] != e.tokens()[i]) {
                    learned++;
                    row++;
                    continue;
                }
                roles[i] = LoraTrainer.KEEP;
                agreed++;
            }
            System.arraycopy(all.keepIds(), row * k, ids, kept * k, k);
            System.arraycopy(all.keepProbs(), row * k, probs, kept * k, k);
            entropy += entropy(all.keepProbs(), row * k, k, vocab);
            kept++;
            row++;
        }
        LoraTrainer.Example out = new LoraTrainer.Example(e.tokens(), roles, e.fork(), e.rejected());
        LoraTrainer.Reference ref = new LoraTrainer.Reference(0f, 0f, java.util.Arrays.copyOf(ids, kept * k),
                java.util.Arrays.copyOf(probs, kept * k), kept == 0 ? 0f : (float) (entropy / kept));
        return new Reshaped(out, ref, agreed, learned);
    }

    /** The entropy of one reference row: its top tokens, the rest of the mass spread evenly (as native reference.cpp). */
    static double entropy(float[] probs, int from, int k, int vocab) {
        double h = 0, mass = 0;
        for (int j = from; j < from + k; j++) {
            double q = probs[j];
            h -= q > 0 ? q * Math.log(q) : 0.0;
            mass += q;
        }
        if (k < vocab) {
            double rest = Math.max(0.0, 1.0 - mass), u = rest / (vocab - k);
            h -= u > 0 ? rest * Math.log(u) : 0.0;
        }
        return h;
    }
}
