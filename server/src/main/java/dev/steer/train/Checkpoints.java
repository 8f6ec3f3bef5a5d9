package dev.steer.train;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Decides when a job's adapter is done, and which of its checkpoints to keep.
 *
 * <p>A fixed number of steps either stops before the habit is learned or goes on long after, where every further
 * step only moves the model further from the base on text nobody taught (measured in docs/training.md: the
 * corrections' NLL reached 0.1 while most unrelated answers had changed). So between optimizer steps the job
 * measures the two behaviours the gate judges afterwards by generation, here teacher-forced in one forward pass
 * per example ({@link LoraTrainer#predict}):
 * <ul>
 *   <li><em>correction rate</em>: of the held-out forks, how many the adapter's greedy continuation would begin
 *       with the correction (its first {@link EvalGate#CORRECTION_PREFIX} tokens each the argmax);</li>
 *   <li><em>changed</em>: of the watch prompts' base answers, how many would change within their first
 *       {@link EvalGate#CHANGED_PREFIX} characters beyond a near-tie ({@link EvalGate#changedBeyondTie}).</li>
 * </ul>
 * The best checkpoint is the one with the highest correction rate among those that changed at most
 * {@code maxChanged} of the watch answers (fewer changed, then the earlier, breaks ties; while no fork is learned
 * whole, the later); without such a one, the one with the largest rate minus changed. The job stops once every
 * held-out fork is learned by a checkpoint within the bound: training further could only add drift.
 *
 * <p>The watch prompts are neither trained on nor the gate's probes, so the gate still sees fresh prompts; the
 * held-out forks are the gate's too (with 20 to 500 steers there are too few to split three ways), which makes the
 * gate's correction rate a little optimistic: its probes and degenerate checks are what selection did not see.
 */
final class Checkpoints {
    /** One measurement: after {@code step} optimizer steps. */
    record Check(int step, int forks, int learned, int watched, int changed) {
        double correctionRate() {
            return forks == 0 ? 0 : (double) learned / forks;
        }

        double changedFraction() {
            return watched == 0 ? 0 : (double) changed / watched;
        }
    }

    /** Of {@code forks} forks, how many {@code learned}: the greedy choices begin with the correction. */
    record Learned(int learned, int forks) {}

    /** What a checked fork or watch answer is: its example and, per row checked, the token greedy should write. */
    private record Target(LoraTrainer.Example example, int[] rows, int[] want) {}

    /** A watch prompt's base answer (its first 40 characters, {@code rows} tokens) and its base distributions. */
    private record Watched(LoraTrainer.Example example, LoraTrainer.Reference base, int rows) {}

    private final LoraTrainer trainer;
    private final double maxChanged;
    private final List<List<Target>> forks = new ArrayList<>();  // per held-out answer, one target per fork
    private final List<Watched> watch = new ArrayList<>();
    private final List<Check> checks = new ArrayList<>();
    private Check best;
    private int checksSinceBest;  // checks measured after the best one, none better
    private float[] bestWeights;

    /**
     * @param watchPrompts  prompts nobody steered, with the base model's greedy answers (tokens)
     * @param maxChanged    the gate's bound on changed answers
     */
    Checkpoints(LoraTrainer trainer, LlamaModel model, List<TrainingSet.Item> heldOut, List<int[]> watchPrompts,
                List<int[]> watchAnswers, double maxChanged) {
        this.trainer = trainer;
        this.maxChanged = maxChanged;
        for (TrainingSet.Item item : heldOut) {
            forks.add(forkTargets(item));
        }
        for (int i = 0; i < watchPrompts.size(); i++) {
            int[] answer = watchAnswers.get(i);
            int n = EvalGate.visiblePrefix(model, answer);
            if (n == 0) {
                continue;
            }
            LoraTrainer.Example e = JobRunner.replayExample(watchPrompts.get(i), Arrays.copyOf(answer, n));
            // Against the trainer's own base distributions, not the engine's answer tokens: the two compute in
            // other orders, and a near-tie they break differently is not the adapter's doing.
            watch.add(new Watched(e, trainer.reference(e), n));
        }
    }

    /** Measures the adapter as it is now, and keeps it if it is the best so far. */
    Check measure(int step) {
        Learned l = learned(trainer, forks, true);
        int changed = 0;
        for (Watched w : watch) {
            changed += EvalGate.changedBeyondTie(trainer.predict(w.example(), true).keep(), w.base(), w.rows()) ? 1 : 0;
        }
        Check c = new Check(step, l.forks(), l.learned(), watch.size(), changed);
        checks.add(c);
        if (best == null || better(c, best)) {
            best = c;
            checksSinceBest = 0;
            bestWeights = trainer.snapshot();
        } else {
            checksSinceBest++;
        }
        return c;
    }

    /**
     * Checks in a row without a better checkpoint, after which the job stops. Three, an epoch and a half at two
     * checks an epoch: the held-out forks learned go up and down by one from check to check, so one or two checks
     * without a new best say little. Measured on SmolLM2 (docs/training.md, ninth session): a job that stopped so at
     * step 88 of 115 kept the same checkpoint (step 55) and wrote the same adapter, bit for bit, as the full run, in
     * 136 s instead of 155 s.
     */
    static final int PATIENCE = 3;

    /**
     * The best checkpoint has learned a held-out fork and is {@link #PATIENCE} checks old: what follows it has stopped
     * getting better. While none is learned the job goes on: the checks then only compare drift, and learning may
     * still come (CI's one-habit SmolLM2 job, stopped after three checks with none, had learned nothing).
     */
    boolean stalled() {
        return best != null && best.learned() > 0 && checksSinceBest >= PATIENCE;
    }

    /** Every held-out fork learned within the change bound: more steps could only add drift. */
    boolean done() {
        return best != null && best.forks() > 0 && best.learned() == best.forks() && eligible(best, maxChanged);
    }

    Check best() {
        return best;
    }

    List<Check> checks() {
        return List.copyOf(checks);
    }

    /**
     * Puts the best checkpoint's weights back into the trainer: always, since the trainer may hold other weights
     * than the ones measured last (with {@code ema_decay} it measures an average and trains on).
     */
    void restoreBest() {
        if (bestWeights != null) {
            trainer.restore(bestWeights);
        }
    }

    private static boolean eligible(Check c, double maxChanged) {
        return c.changedFraction() <= maxChanged + 1e-9;
    }

    private boolean better(Check c, Check than) {
        return better(c, than, maxChanged);
    }

    /**
     * Is {@code c} better than {@code than}? Ties keep the earlier one, except while neither has learned a fork
     * whole: then nothing tells an earlier checkpoint apart, and the later one is ahead (within {@code maxChanged}),
     * as if the job ran its schedule without stopping early. A correction can hold what no adapter says at a
     * held-out fork (a converted temperature, "37.0°C (98.6°F)"): every check of such a job tied at none learned,
     * and the earliest was kept (measured, and the finer signals tried first: docs/training.md, tenth session).
     */
    static boolean better(Check c, Check than, double maxChanged) {
        if (eligible(c, maxChanged) != eligible(than, maxChanged)) {
            return eligible(c, maxChanged);
        }
        if (!eligible(c, maxChanged)) {
            return c.correctionRate() - c.changedFraction() > than.correctionRate() - than.changedFraction() + 1e-9;
        }
        if (c.learned() != than.learned()) {
            return c.learned() > than.learned();
        }
        if (c.learned() == 0) {
            return c.step() > than.step();
        }
        return c.changed() < than.changed();
    }

    /**
     * Of the items' forks, how many the model (with the adapter or without) would begin with the correction, teacher-
     * forced as {@link #measure} counts them. The gate counts the training forks so when too few are held out
     * ({@link EvalGate#FORKS_TO_JUDGE_LEARNING}).
     */
    static Learned forksLearned(LoraTrainer trainer, List<TrainingSet.Item> items, boolean withAdapter) {
        return learned(trainer, items.stream().map(Checkpoints::forkTargets).toList(), withAdapter);
    }

    private static Learned learned(LoraTrainer trainer, List<List<Target>> perAnswer, boolean withAdapter) {
        int forks = 0, learned = 0;
        for (List<Target> answer : perAnswer) {
            if (answer.isEmpty()) {
                continue;
            }
            int[] got = trainer.predict(answer.get(0).example(), withAdapter).learn();
            for (Target t : answer) {
                forks++;
                learned += matches(got, t) ? 1 : 0;
            }
        }
        return new Learned(learned, forks);
    }

    private static boolean matches(int[] got, Target t) {
        for (int k = 0; k < t.rows().length; k++) {
            if (got[t.rows()[k]] != t.want()[k]) {
                return false;
            }
        }
        return true;
    }

    /** Per fork of the item: which of the example's learn rows hold its correction's first tokens. */
    private static List<Target> forkTargets(TrainingSet.Item item) {
        LoraTrainer.Example e = item.example();
        // Only the learn rows are read: without keep rows the forward stops at the last correction and runs the
        // LM head on the corrections alone.
        byte[] roles = e.roles().clone();
        for (int i = 0; i < roles.length; i++) {
            roles[i] = roles[i] == LoraTrainer.LEARN ? LoraTrainer.LEARN : LoraTrainer.NONE;
        }
        LoraTrainer.Example learnOnly = new LoraTrainer.Example(e.tokens(), roles, -1, new int[0]);
        List<Integer> learnAt = new ArrayList<>();  // token index of each learn row, in row order
        for (int i = 1; i < e.roles().length; i++) {
            if (e.roles()[i] == LoraTrainer.LEARN) {
                learnAt.add(i);
            }
        }
        List<Target> out = new ArrayList<>();
        for (TrainingSet.Fork f : item.forks()) {
            int first = learnAt.indexOf(f.context().length);
            if (first < 0) {
                continue;
            }
            int n = Math.min(EvalGate.CORRECTION_PREFIX, f.correction().length);
            int[] rows = new int[n];
            for (int k = 0; k < n; k++) {
                rows[k] = first + k;
            }
            out.add(new Target(learnOnly, rows, Arrays.copyOf(f.correction(), n)));
        }
        return out;
    }
}
