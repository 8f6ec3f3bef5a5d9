package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LoraTrainer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The learning-rate schedule: linear warm-up to the peak, then cosine decay to a tenth of it at the last step. */
class HyperparametersTest {
    private static Hyperparameters lr(float lr, int warmup) {
        Hyperparameters d = Hyperparameters.defaults(Hyperparameters.Method.SFT);
        return new Hyperparameters(d.nEpochs(), d.batchSize(), lr, warmup, d.weightDecay(), d.maxGradNorm(), d.loraRank(), d.loraAlpha(),
                List.copyOf(d.targetModules()), d.beta(), d.nllWeight(), d.dpoWeight(), d.validationSplit(), d.seed(),
                d.activationCheckpointing(), d.klWeight(), d.replay(), d.earlyStopping(), d.onPolicy(), d.adamEpsilon(), d.unlikelihoodWeight(), d.guardWeight(), d.loraLayers(), d.stops(), d.emaDecay(), d.checkpointSegments(), d.firstTokenWeight());
    }

    @Test
    void warmUpRisesLinearlyThenCosineFallsToATenth() {
        Hyperparameters h = lr(1e-3f, 4);
        int total = 25;  // 4 warm-up steps, then 21 from the peak (step 4) to the last (step 24)
        // Warm-up: steps 0..3 are 1/5 .. 4/5 of the peak; step 4 is the peak.
        for (int s = 0; s < 4; s++) {
            assertEquals(1e-3f * (s + 1) / 5, h.learningRateAt(s, total), 1e-9f, "warm-up step " + s);
        }
        assertEquals(1e-3f, h.learningRateAt(4, total), 1e-9f, "the peak right after the warm-up");
        // Cosine: half-way through the decay it is half-way between the peak and a tenth of it.
        assertEquals(1e-3f * 0.55f, h.learningRateAt(4 + 10, total), 2e-5f);
        assertEquals(1e-4f, h.learningRateAt(total - 1, total), 1e-9f, "a tenth of the peak at the last step");
        for (int s = 5; s < total; s++) {
            assertTrue(h.learningRateAt(s, total) < h.learningRateAt(s - 1, total), "decays every step after the peak: " + s);
        }
    }

    @Test
    void theDefaultWarmUpIsATenthOfTheSteps() {
        Hyperparameters h = lr(2e-3f, -1);
        assertEquals(-1, Hyperparameters.defaults(Hyperparameters.Method.SFT).warmupSteps(), "the default is 'a tenth'");
        int total = 50;  // warm-up of 5 steps
        assertEquals(2e-3f / 6, h.learningRateAt(0, total), 1e-9f);
        assertEquals(2e-3f * 5 / 6, h.learningRateAt(4, total), 1e-9f);
        assertEquals(2e-3f, h.learningRateAt(5, total), 1e-9f);
        assertEquals(2e-4f, h.learningRateAt(total - 1, total), 1e-9f);
    }

    @Test
    void aRunTooShortToDecayTrainsAtThePeak() {
        Hyperparameters h = lr(1e-3f, 0);
        assertEquals(1e-3f, h.learningRateAt(0, 1), 1e-9f, "one step: no warm-up, no decay");
        assertEquals(1e-3f, h.learningRateAt(0, 2), 1e-9f);
        assertEquals(1e-4f, h.learningRateAt(1, 2), 1e-9f);
        assertEquals(1e-3f, lr(1e-3f, -1).learningRateAt(0, 5), 1e-9f, "5 steps: a tenth is no warm-up");
    }

    @Test
    void theOptimizerOfAStepCarriesItsRateAndTheFixedSettings() {
        Hyperparameters d = Hyperparameters.defaults(Hyperparameters.Method.SFT);
        LoraTrainer.Optimizer o = d.optimizerAt(3, 30);
        assertEquals(d.learningRateAt(3, 30), o.learningRate(), 0f);
        assertEquals(d.weightDecay(), o.weightDecay(), 0f);
        assertEquals(d.maxGradNorm(), o.maxGradNorm(), 0f);
    }

    @Test
    void theAdaptedBlocksAreTheLastHalfByDefaultEveryOneAtZeroAndNoMoreThanTheModelHas() {
        Hyperparameters d = Hyperparameters.defaults(Hyperparameters.Method.SFT);
        assertEquals(Hyperparameters.HALF_THE_LAYERS, d.loraLayers());
        assertEquals(15, d.adaptedLayers(30), "SmolLM2-135M: 15 of 30");
        assertEquals(9, d.adaptedLayers(18), "Gemma 3 270M: 9 of 18");
        assertEquals(1, d.adaptedLayers(1));
        assertEquals(2, d.adaptedLayers(3), "half rounded up");
        assertEquals(30, layers(LoraTrainer.ALL_LAYERS).adaptedLayers(30));
        assertEquals(10, layers(10).adaptedLayers(30));
        assertEquals(30, layers(100).adaptedLayers(30));
    }

    private static Hyperparameters layers(int n) {
        Hyperparameters h = Hyperparameters.defaults(Hyperparameters.Method.SFT).withLoraLayers(n);
        assertEquals(n, h.loraLayers());
        return h;
    }

    @Test
    void aJobStoredBeforeCheckpointSegmentsReadsAsWithoutThem() {
        // JobStore keeps hyperparameters as Gson writes the record; rows from before 2026-12-06 lack the field.
        com.google.gson.JsonObject stored = new com.google.gson.Gson().toJsonTree(Hyperparameters.defaults(Hyperparameters.Method.SFT)).getAsJsonObject();
        stored.remove("checkpointSegments");
        stored.addProperty("activationCheckpointing", true);
        Hyperparameters h = new com.google.gson.Gson().fromJson(stored, Hyperparameters.class);
        assertEquals(0, h.checkpointSegments());
        assertTrue(h.activationCheckpointing());
    }
}
