package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The base model's references ({@link LoraTrainer#reference}: the adapter off) of the built-in examples: the replay
 * prompts a job keeps under the KL term and the gate's probes, each with the base model's own answer
 * ({@link BaseAnswers}). Such an example is the same in every job of a server, and so is its reference, which depends
 * only on the model, the example and where the adapted blocks begin (the trainer computes the blocks below in a pass
 * of their own): kept, every job after the first skips them, and the first too once {@link JobRunner#prepare} has
 * made them (~4 s of a SmolLM2-135M job on 2 cores, docs/training.md "Measured"). A job's own steered answers are
 * not kept here: they change from job to job and would only grow the map. The references handed out are shared:
 * callers read them and never write into their arrays.
 */
final class BaseReferences {
    private record Key(int firstAdapted, int fork, String example) {}

    private final Map<Key, LoraTrainer.Reference> kept = new HashMap<>();

    /**
     * The reference of {@code e} with the trainer's blocks adapted from {@code firstAdapted} on, computed by {@code t}
     * once. One call at a time: a job that asks while the preparation computes waits and then finds it kept.
     */
    synchronized LoraTrainer.Reference reference(LoraTrainer t, int firstAdapted, LoraTrainer.Example e) {
        Key k = new Key(firstAdapted, e.fork(), Arrays.toString(e.tokens()) + Arrays.toString(e.roles()) + Arrays.toString(e.rejected()));
        LoraTrainer.Reference r = kept.get(k);
        if (r == null) {
            r = t.reference(e);
            kept.put(k, r);
        }
        return r;
    }

    /** How many references are kept (for tests). */
    synchronized int size() {
        return kept.size();
    }
}
