package dev.steer.train;

/**
 * An exponential moving average of a job's LoRA weights over its optimizer steps (hyperparameter {@code ema_decay}).
 *
 * <p>Why: at the learning rates that learn a habit from a few dozen steers, the weights move by about the learning
 * rate every step (Adam), and what they say at the held-out forks swings from check to check (SmolLM2, three rounds
 * of steering: 8, 4, 9 of 10 held-out forks learned at three checks in a row; a job stopped on a swing kept a
 * checkpoint that had half the habits). The average of the last steps' weights is where they swing around. LoRA A
 * and B are averaged each on its own, as PEFT users average them (the product of the averages is not the average of
 * the products, but close while the weights move slowly relative to their size).
 *
 * <p>The first update starts the average at the weights given (no zero start to correct for).
 */
final class WeightAverage {
    private final float decay;
    private float[] average;

    WeightAverage(float decay) {
        if (!(decay > 0 && decay < 1)) {
            throw new IllegalArgumentException("decay must be in (0, 1): " + decay);
        }
        this.decay = decay;
    }

    /** Folds in the weights after one more step: average += (1 - decay) * (weights - average). */
    void update(float[] weights) {
        if (average == null) {
            average = weights.clone();
            return;
        }
        if (weights.length != average.length) {
            throw new IllegalArgumentException("weights of " + weights.length + " values, the average has " + average.length);
        }
        float rate = 1 - decay;
        for (int i = 0; i < average.length; i++) {
            average[i] += rate * (weights[i] - average[i]);
        }
    }

    /** The average so far (a copy), or null before the first update. */
    float[] weights() {
        return average == null ? null : average.clone();
    }
}
