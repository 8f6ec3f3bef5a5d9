package dev.steer.train;

import dev.steer.llama.LoraTrainer;
import java.util.List;

/**
 * Decides whether a freshly trained adapter may serve: base model vs adapter on the held-out steers, and on a fixed
 * canary text that no steer touched.
 *
 * <ul>
 *   <li>mean NLL of the corrections (per token, lower is better);
 *   <li>preference accuracy: how often log p(correction) > log p(rejected continuation) at the fork;
 *   <li>drift: relative change of the canary's perplexity (the adapter should not damage what it was not taught).
 * </ul>
 * The adapter passes when it lowers the held-out NLL, does not lower the preference accuracy, and keeps the drift
 * within the bound. Without held-out steers there is nothing to judge by, and the verdict is "skipped".
 */
public final class EvalGate {
    /** A short, ordinary paragraph: its perplexity should not move when a few steers are learned. */
    public static final String DEFAULT_CANARY = "The library opens at nine in the morning and closes at six in the evening. "
            + "Visitors may borrow up to five books at a time, and each loan lasts three weeks. Quiet rooms on the "
            + "second floor can be reserved at the front desk.";

    /**
     * @param maxDrift     largest accepted relative increase of the canary's perplexity (0.1: +10%)
     * @param autoActivate activate the adapter when it passes
     */
    public record Settings(double maxDrift, boolean autoActivate, String canary) {
        public static Settings defaults() {
            return new Settings(0.1, true, DEFAULT_CANARY);
        }
    }

    public record Report(int heldOut, double baseNll, double adapterNll, int preferencePairs, double basePreferenceAccuracy,
                         double adapterPreferenceAccuracy, double canaryBasePerplexity, double canaryAdapterPerplexity,
                         double drift, double maxDrift, String verdict, String reason) {
        public boolean passed() {
            return verdict.equals("passed");
        }
    }

    private EvalGate() {}

    public static Report evaluate(LoraTrainer trainer, List<TrainingSet.Item> heldOut, int[] canary, Settings s) {
        LoraTrainer.Weights w = LoraTrainer.Weights.sftOnly();
        double nllBase = 0, nllAdapter = 0;
        int tokens = 0, pairs = 0, winsBase = 0, winsAdapter = 0;
        for (TrainingSet.Item item : heldOut) {
            LoraTrainer.Example e = item.example();
            LoraTrainer.Reference base = trainer.reference(e);
            LoraTrainer.Evaluation adapter = trainer.evaluate(e, base, w);
            nllBase -= base.logpChosen();
            nllAdapter -= adapter.logpChosen();
            tokens += e.chosen().length;
            if (e.rejected().length > 0) {
                pairs++;
                winsBase += base.logpChosen() > base.logpRejected() ? 1 : 0;
                winsAdapter += adapter.logpChosen() > adapter.logpRejected() ? 1 : 0;
            }
        }
        double pplBase = Double.NaN, pplAdapter = Double.NaN, drift = 0;
        if (canary.length >= 2) {
            LoraTrainer.Example c = new LoraTrainer.Example(new int[] {canary[0]}, java.util.Arrays.copyOfRange(canary, 1, canary.length), new int[0]);
            LoraTrainer.Reference base = trainer.reference(c);
            LoraTrainer.Evaluation adapter = trainer.evaluate(c, base, w);
            pplBase = Math.exp(-base.logpChosen() / (canary.length - 1));
            pplAdapter = Math.exp(-adapter.logpChosen() / (canary.length - 1));
            drift = pplAdapter / pplBase - 1;
        }
        double baseNll = tokens == 0 ? Double.NaN : nllBase / tokens;
        double adapterNll = tokens == 0 ? Double.NaN : nllAdapter / tokens;
        double accBase = pairs == 0 ? Double.NaN : (double) winsBase / pairs;
        double accAdapter = pairs == 0 ? Double.NaN : (double) winsAdapter / pairs;
        String verdict, reason;
        if (heldOut.isEmpty()) {
            verdict = "skipped";
            reason = "no held-out steers (two or more steers are needed for a split)";
        } else if (!(adapterNll < baseNll)) {
            verdict = "failed";
            reason = String.format("held-out correction NLL did not improve (%.4f -> %.4f)", baseNll, adapterNll);
        } else if (pairs > 0 && accAdapter < accBase) {
            verdict = "failed";
            reason = String.format("preference accuracy fell (%.3f -> %.3f)", accBase, accAdapter);
        } else if (drift > s.maxDrift()) {
            verdict = "failed";
            reason = String.format("canary perplexity drifted by %+.1f%%, more than the allowed %.1f%%", 100 * drift, 100 * s.maxDrift());
        } else {
            verdict = "passed";
            reason = String.format("held-out NLL %.4f -> %.4f, canary drift %+.1f%%", baseNll, adapterNll, 100 * drift);
        }
        return new Report(heldOut.size(), baseNll, adapterNll, pairs, accBase, accAdapter, pplBase, pplAdapter, drift,
                s.maxDrift(), verdict, reason);
    }
}
