package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The moving average of a job's weights (ema_decay): its arithmetic, written out step by step. */
class WeightAverageTest {
    @Test
    void startsAtTheFirstWeightsThenMovesATenthOfTheWayEachStep() {
        WeightAverage a = new WeightAverage(0.9f);
        assertNull(a.weights(), "nothing before the first step");
        a.update(new float[] {1f, -2f, 0f});
        assertArrayEquals(new float[] {1f, -2f, 0f}, a.weights(), "the first weights, not a tenth of them");
        a.update(new float[] {2f, -2f, 10f});
        assertArrayEquals(new float[] {1.1f, -2f, 1f}, a.weights(), 1e-6f);
        a.update(new float[] {2f, 0f, 10f});
        // 1.1 + 0.1 * (2 - 1.1), -2 + 0.1 * (0 + 2), 1 + 0.1 * (10 - 1)
        assertArrayEquals(new float[] {1.19f, -1.8f, 1.9f}, a.weights(), 1e-6f);
    }

    @Test
    void weightsAreACopyAndTheInputIsNotKept() {
        WeightAverage a = new WeightAverage(0.5f);
        float[] w = {4f};
        a.update(w);
        w[0] = 100f;  // the trainer's snapshot array, reused by a caller
        float[] got = a.weights();
        got[0] = -1f;
        assertArrayEquals(new float[] {4f}, a.weights());
    }

    @Test
    void refusesADecayOutsideZeroToOneAndWeightsOfAnotherSize() {
        assertThrows(IllegalArgumentException.class, () -> new WeightAverage(0f));
        assertThrows(IllegalArgumentException.class, () -> new WeightAverage(1f));
        assertThrows(IllegalArgumentException.class, () -> new WeightAverage(Float.NaN));
        WeightAverage a = new WeightAverage(0.9f);
        a.update(new float[2]);
        assertThrows(IllegalArgumentException.class, () -> a.update(new float[3]));
    }
}
