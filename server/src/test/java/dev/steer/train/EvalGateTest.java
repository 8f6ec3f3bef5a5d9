package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The gate's decision on measured numbers: each broken kind of adapter is refused, naming why. */
class EvalGateTest {
    private static final EvalGate.Settings S = EvalGate.Settings.defaults();

    /** A good adapter: learned the corrections, says them at held-out forks, leaves the probes alone. */
    private static EvalGate.Measured good() {
        return new EvalGate.Measured(8, 6.8, 0.4, 8, 0.0, 1.0, 0.02, 10, 0.0, 0.9, 12, 1, 22, 1, 1);
    }

    private static EvalGate.Measured with(EvalGate.Measured m, int changed, int degenerate, double rate, double nll, double drift) {
        return new EvalGate.Measured(m.heldOut(), m.baseNll(), nll, m.pairs(), m.baseAccuracy(), m.adapterAccuracy(), drift, m.forks(),
                m.baseCorrectionRate(), rate, m.probes(), changed, m.answers(), m.baseDegenerate(), degenerate);
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
        assertTrue(d[1].contains("11 of 12 answers to prompts nobody steered changed"), d[1]);
    }

    @Test
    void loopsAreRefusedEvenWhenTheCanaryHardlyMoves() {
        // The lr 3e-4 adapter: canary +3.5%, yet its held-out continuations loop.
        String[] d = EvalGate.decide(with(good(), 2, 9, 0.8, 1.2, 0.035), S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("9 of 22 answers are degenerate"), d[1]);
    }

    @Test
    void anAdapterThatLearnedNothingIsRefused() {
        String[] d = EvalGate.decide(with(good(), 0, 1, 0.0, 6.5, 0.0), S);
        assertEquals("failed", d[0]);
        assertTrue(d[1].contains("correction rate did not rise"), d[1]);
        d = EvalGate.decide(with(good(), 0, 1, 0.5, 7.0, 0.0), S);
        assertTrue(d[1].contains("NLL did not improve"), d[1]);
    }

    @Test
    void withoutHeldOutSteersTheGateSkips() {
        EvalGate.Measured none = new EvalGate.Measured(0, Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN, 0, 0, Double.NaN, Double.NaN,
                12, 0, 12, 0, 0);
        assertEquals("skipped", EvalGate.decide(none, S)[0]);
    }

    @Test
    void theBoundsAreSettings() {
        EvalGate.Measured m = with(good(), 5, 1, 0.9, 0.4, 0.02);
        assertEquals("failed", EvalGate.decide(m, S)[0], "5 of 12 changed > 25%");
        assertEquals("passed", EvalGate.decide(m, new EvalGate.Settings(0.1, true, EvalGate.DEFAULT_CANARY, 0.5, 0.0))[0]);
    }
}
