package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LoraTrainer;
import org.junit.jupiter.api.Test;

/** The gate's decision on measured numbers: each broken kind of adapter is refused, naming why. */
class EvalGateTest {
    private static final EvalGate.Settings S = EvalGate.Settings.defaults();

    /** A good adapter: learned the corrections, says them at held-out forks, leaves the probes alone. */
    private static EvalGate.Measured good() {
        return new EvalGate.Measured(8, 6.8, 0.4, 8, 0.0, 1.0, 0.02, 10, 0.0, 0.9, 12, 1, 22, 1, 1, 0, 0, 0, 0, 0);
    }

    private static EvalGate.Measured with(EvalGate.Measured m, int changed, int degenerate, double rate, double nll, double drift) {
        return new EvalGate.Measured(m.heldOut(), m.baseNll(), nll, m.pairs(), m.baseAccuracy(), m.adapterAccuracy(), drift, m.forks(),
                m.baseCorrectionRate(), rate, m.probes(), changed, m.answers(), m.baseDegenerate(), degenerate,
                Math.max(0, degenerate - m.baseDegenerate()), Math.max(0, m.baseDegenerate() - degenerate), m.trainedForks(),
                m.trainedBaseLearned(), m.trainedAdapterLearned());
    }

    @Test
    void aGoodAdapterPasses() {
        String[] d = EvalGate.decide(good(), S);
        assertEquals("passed", d[0], d[1]);
    }

    @Test
    void aCollapseIsRefused() {
        // Learned the corrections (NLL 6.8 -> 0.3) and says them everywhere: 11 of 12 probes changed, many loops.
        String[] d = EvalGate.decide(with(good(), 11, 14, 1.0, 0.3, 0.24), S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("degenerate"), d[1]);
        d = EvalGate.decide(with(good(), 11, 1, 1.0, 0.3, 0.02), S);
        assertTrue(d[1].contains("11 of 12 answers to prompts nobody steered changed beyond near-ties"), d[1]);
    }

    @Test
    void loopsAreRefusedEvenWhenTheCanaryHardlyMoves() {
        // The lr 3e-4 adapter: canary +3.5%, yet its held-out continuations loop.
        String[] d = EvalGate.decide(with(good(), 2, 9, 0.8, 1.2, 0.035), S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("9 of 22 answers are degenerate"), d[1]);
    }

    @Test
    void aFewMoreLoopsThanChanceGivesPassButNewLoopsBeyondItAreRefused() {
        EvalGate.Measured m = good();
        // 5 loops of 14 against the base's 3: 3 answers loop where the base's did not, 1 the other way (p = 5/16)
        EvalGate.Measured chance = new EvalGate.Measured(m.heldOut(), m.baseNll(), m.adapterNll(), m.pairs(), m.baseAccuracy(),
                m.adapterAccuracy(), m.drift(), m.forks(), m.baseCorrectionRate(), m.adapterCorrectionRate(), m.probes(), m.changed(),
                14, 3, 5, 3, 1, 0, 0, 0);
        assertEquals("passed", EvalGate.decide(chance, S)[0]);
        // 4 new loops and none the other way (p = 1/16): refused
        EvalGate.Measured beyond = new EvalGate.Measured(m.heldOut(), m.baseNll(), m.adapterNll(), m.pairs(), m.baseAccuracy(),
                m.adapterAccuracy(), m.drift(), m.forks(), m.baseCorrectionRate(), m.adapterCorrectionRate(), m.probes(), m.changed(),
                14, 2, 6, 4, 0, 0, 0, 0);
        String[] d = EvalGate.decide(beyond, S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("4 loop where the base's did not, 0 the other way"), d[1]);
        assertEquals(5 / 16.0, EvalGate.loopsByChance(3, 1), 1e-12);
        assertEquals(1 / 16.0, EvalGate.loopsByChance(4, 0), 1e-12);
        assertEquals(1.0, EvalGate.loopsByChance(0, 0), 1e-12);
    }

    @Test
    void anAdapterThatLearnedNothingIsRefused() {
        EvalGate.Measured saysNothing = with(good(), 0, 1, 0.0, 6.5, 0.0);
        EvalGate.Measured prefersNothing = new EvalGate.Measured(saysNothing.heldOut(), saysNothing.baseNll(), saysNothing.adapterNll(),
                saysNothing.pairs(), 0.0, 0.0, saysNothing.drift(), saysNothing.forks(), saysNothing.baseCorrectionRate(),
                saysNothing.adapterCorrectionRate(), saysNothing.probes(), saysNothing.changed(), saysNothing.answers(),
                saysNothing.baseDegenerate(), saysNothing.adapterDegenerate(), saysNothing.newLoops(), saysNothing.lostLoops(), 0, 0, 0);
        String[] d = EvalGate.decide(prefersNothing, S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("correction rate did not rise (0.00 -> 0.00), nor the preference accuracy (0.00 -> 0.00)"), d[1]);
        // Says no correction whole, yet prefers them to what they replaced (a converted temperature no adapter computes,
        // in the habit's form): learned, and judged by the other bounds.
        assertEquals("passed", EvalGate.decide(saysNothing, S)[0]);
        d = EvalGate.decide(with(good(), 0, 1, 0.5, 7.0, 0.0), S);
        assertTrue(d[1].contains("NLL did not improve"), d[1]);
    }

    /**
     * good()'s probes with {@code forks} held-out forks and nothing learned at them, {@code trainedLearned} of the 12
     * forks it trained on said (the base: none), and the given harm.
     */
    private static EvalGate.Measured learnedNothingAt(int forks, int trainedLearned, int changed, int degenerate, double drift) {
        EvalGate.Measured m = good();
        return new EvalGate.Measured(1, 1.77, 1.95, 1, 0.0, 0.0, drift, forks, 0.0, 0.0, m.probes(), changed, forks + m.probes(),
                m.baseDegenerate(), degenerate, Math.max(0, degenerate - m.baseDegenerate()), 0, 12, 0, trainedLearned);
    }

    /** m with {@code forks} training forks, of which the base says {@code base} corrections and the adapter {@code adapter}. */
    private static EvalGate.Measured trained(EvalGate.Measured m, int forks, int base, int adapter) {
        return new EvalGate.Measured(m.heldOut(), m.baseNll(), m.adapterNll(), m.pairs(), m.baseAccuracy(), m.adapterAccuracy(), m.drift(),
                m.forks(), m.baseCorrectionRate(), m.adapterCorrectionRate(), m.probes(), m.changed(), m.answers(), m.baseDegenerate(),
                m.adapterDegenerate(), m.newLoops(), m.lostLoops(), forks, base, adapter);
    }

    @Test
    void withOneOrTwoHeldOutForksLearningIsJudgedWhereTrainedAndHarmAsAlways() {
        // A single-habit job of 13 recorded steers holds out one answer; there the adapter said "No." for the person's "Yes.".
        for (int forks = 1; forks < EvalGate.FORKS_TO_JUDGE_LEARNING; forks++) {
            int answers = forks + good().probes();
            String[] d = EvalGate.decide(learnedNothingAt(forks, 11, 1, 1, 0.01), S);
            assertEquals("passed", d[0], d[1]);
            assertTrue(d[1].startsWith("learning judged on the 12 corrections it trained on, not on held-out forks (" + forks + ";"), d[1]);
            assertTrue(d[1].contains("the adapter says 11 of them, the base 0"), d[1]);
            assertTrue(d[1].contains("held-out correction rate 0.00 -> 0.00, NLL 1.770 -> 1.950"), "the numbers are still reported: " + d[1]);
            // A quarter of its training forks more than the base passes; fewer: it learned too little, refused.
            assertEquals("passed", EvalGate.decide(learnedNothingAt(forks, 3, 1, 1, 0.01), S)[0]);
            d = EvalGate.decide(learnedNothingAt(forks, 2, 1, 1, 0.01), S);
            assertEquals("failed", d[0], d[1]);
            assertTrue(d[1].contains("the adapter says 2 of them, the base 0; at least 3 more than the base are needed"), d[1]);
            // The bounds on harm hold at any size: a collapse, loops beyond chance, the canary.
            d = EvalGate.decide(learnedNothingAt(forks, 11, 11, 1, 0.01), S);
            assertEquals("failed", d[0], d[1]);
            assertTrue(d[1].contains("11 of 12 answers to prompts nobody steered changed"), d[1]);
            d = EvalGate.decide(learnedNothingAt(forks, 11, 1, 9, 0.01), S);
            assertEquals("failed", d[0], d[1]);
            assertTrue(d[1].contains("9 of " + answers + " answers are degenerate"), d[1]);
            d = EvalGate.decide(learnedNothingAt(forks, 11, 1, 1, 0.3), S);
            assertEquals("failed", d[0], d[1]);
            assertTrue(d[1].contains("canary perplexity drifted by +30.0%"), d[1]);
        }
        // The quarter is of what the base does not already say: base 10 of 12, the adapter all 12 passes, 10 does not.
        assertEquals("passed", EvalGate.decide(trained(learnedNothingAt(1, 0, 1, 1, 0.01), 12, 10, 12), S)[0]);
        String[] refused = EvalGate.decide(trained(learnedNothingAt(1, 0, 1, 1, 0.01), 12, 10, 10), S);
        assertEquals("failed", refused[0], refused[1]);
        assertTrue(refused[1].contains("the adapter says 10 of them, the base 10; at least 1 more"), refused[1]);
        // No training fork to count: nothing judged, said so.
        String[] none = EvalGate.decide(trained(learnedNothingAt(1, 0, 1, 1, 0.01), 0, 0, 0), S);
        assertEquals("passed", none[0], none[1]);
        assertTrue(none[1].startsWith("learning not judged (1 held-out fork, 3 or more are needed, and no training fork to count)"), none[1]);
        // With enough held-out forks the training forks do not decide: good() learned on held-out forks, none where trained.
        assertEquals("passed", EvalGate.decide(trained(good(), 12, 0, 0), S)[0]);
        // From FORKS_TO_JUDGE_LEARNING forks on, learning nothing is refused again.
        String[] d = EvalGate.decide(learnedNothingAt(EvalGate.FORKS_TO_JUDGE_LEARNING, 11, 1, 1, 0.01), S);
        assertEquals("failed", d[0], d[1]);
        assertTrue(d[1].contains("NLL did not improve (1.7700 -> 1.9500)"), d[1]);
        assertFalse(EvalGate.decide(good(), S)[1].contains("judged"), "enough forks: judged on them, and the reason does not say otherwise");
    }

    @Test
    void withoutHeldOutSteersTheGateSkips() {
        EvalGate.Measured none = new EvalGate.Measured(0, Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN, 0, 0, Double.NaN, Double.NaN,
                12, 0, 12, 0, 0, 0, 0, 0, 0, 0);
        assertEquals("skipped", EvalGate.decide(none, S)[0]);
    }

    @Test
    void theBoundsAreSettings() {
        EvalGate.Measured m = with(good(), 5, 1, 0.9, 0.4, 0.02);
        assertEquals("failed", EvalGate.decide(m, S)[0], "5 of 12 changed > 25%");
        assertEquals("passed", EvalGate.decide(m, new EvalGate.Settings(0.1, true, EvalGate.DEFAULT_CANARY, 0.5, 0.0, EvalGate.Settings.SCOPE_ALL))[0]);
    }

    /** A reference of two rows: row 0 prefers token 5 (p 0.5) over 6 (p 0.45); row 1 prefers 7 (p 0.9) over 8 (p 0.05). */
    private static LoraTrainer.Reference twoRows() {
        int K = LoraTrainer.REFERENCE_TOP_K;
        int[] ids = new int[2 * K];
        float[] probs = new float[2 * K];
        for (int k = 0; k < K; k++) {
            ids[k] = k == 0 ? 5 : k == 1 ? 6 : 100 + k;
            probs[k] = k == 0 ? 0.5f : k == 1 ? 0.45f : 0.05f / (K - 2);
            ids[K + k] = k == 0 ? 7 : k == 1 ? 8 : 100 + k;
            probs[K + k] = k == 0 ? 0.9f : k == 1 ? 0.05f : 0.05f / (K - 2);
        }
        return new LoraTrainer.Reference(0, 0, ids, probs, 0);
    }

    @Test
    void aFlippedNearTieIsNoChangeAndAFlippedClearChoiceIs() {
        LoraTrainer.Reference base = twoRows();
        assertFalse(EvalGate.changedBeyondTie(new int[] {5, 7}, base, 2), "the same choices");
        assertFalse(EvalGate.changedBeyondTie(new int[] {6, 7}, base, 2), "row 0 was a near-tie (0.5 vs 0.45: 0.1 nats)");
        assertTrue(EvalGate.changedBeyondTie(new int[] {5, 8}, base, 2), "row 1: 0.9 vs 0.05 is 2.9 nats");
        assertTrue(EvalGate.changedBeyondTie(new int[] {5, 9999}, base, 2), "a token outside the base's top K");
        assertFalse(EvalGate.changedBeyondTie(new int[] {5, 8}, base, 1), "only the first row is compared");
        // Greedy generation parts at the first differing row: a tie flip there decides, whatever follows.
        assertFalse(EvalGate.changedBeyondTie(new int[] {6, 8}, base, 2));
    }
}
