package dev.steer.train;

import com.google.gson.annotations.SerializedName;
import dev.steer.llama.LoraTrainer;
import java.util.List;

/**
 * How a job trains. Names follow OpenAI's fine-tuning API where it has one ({@code n_epochs}, {@code batch_size},
 * {@code learning_rate}, {@code beta}); the LoRA ones follow PEFT ({@code lora_rank}, {@code lora_alpha},
 * {@code target_modules}).
 *
 * @param nllWeight       α: weight of the masked cross-entropy on the corrections
 * @param dpoWeight       weight of the span-DPO term (0 for method sft)
 * @param warmupSteps     linear warm-up of the learning rate; after it, cosine decay to a tenth
 * @param maxGradNorm     the batch's gradient is scaled down to this global norm when it is larger (0: no clipping)
 * @param validationSplit fraction of the steers held out for the eval gate (at least one when there are two or more)
 * @param activationCheckpointing recompute each transformer block in the backward pass instead of keeping its
 *                        activations: far less memory for one more forward pass, the same gradients
 * @param klWeight        κ: weight of the preservation term, KL(base || adapter) per token on the text the person
 *                        approved (kept output, continuations) and on the replay answers (0 turns it off)
 * @param replay          how many replay answers train beside the steers, under the KL term only: up to half of them
 *                        answers the person let run (the newest), the rest the built-in prompts' base answers (0: none)
 * @param earlyStopping   measure the adapter twice per epoch and keep the best checkpoint, stopping once every
 *                        held-out fork is learned ({@link Checkpoints}); false (the default) trains exactly
 *                        {@code nEpochs} and saves the moving average after the last step. Off by default: with a
 *                        few dozen steers the held-out forks are four or five, and the checkpoint they picked was an
 *                        earlier, less learned one by chance (docs/training.md, the twenty-seventh session)
 * @param onPolicy        the last {@code onPolicy} epochs also train on the adapter's own greedy text: before them,
 *                        the adapter so far continues each training answer after its last correction and answers
 *                        the replay prompts, and those continuations are kept under the KL term (0: none)
 * @param adamEpsilon     Adam's epsilon (HF's {@code adam_epsilon}): with the usual 1e-8 every LoRA entry moves by
 *                        about the learning rate each step, signal or not; above an entry's gradient scale, an entry
 *                        moves in proportion to its gradient (docs/training.md)
 * @param unlikelihoodWeight with {@code onPolicy}: weight of an unlikelihood term on the adapter's own text where it
 *                        says again what the answer already said (a loop starting; docs/training.md) (0: off)
 * @param guardWeight     γ: weight of the guard: at the approved text after an answer's first correction, none of the
 *                        job's correction tokens may come near the approved token where the base kept it well below
 *                        (docs/training.md) (0: off)
 * @param loraLayers      how many transformer blocks, from the last down, carry LoRA tensors
 *                        ({@link LoraTrainer#ALL_LAYERS}: every one; {@link #HALF_THE_LAYERS}: the last half, rounded
 *                        up); the blocks below are computed once per example ({@link #adaptedLayers})
 * @param stops           what a stop that ends an answer teaches ({@link Stops}; {@link TrainingSet})
 * @param emaDecay        the adapter early stopping measures, keeps and the job saves is an exponential moving average
 *                        of the trained weights with this decay per step ({@link WeightAverage}; 0: the weights as
 *                        trained)
 * @param firstTokenWeight the cross-entropy on each correction's first word once more (mean over corrections), on
 *                        top of {@code nllWeight}'s mean over all correction tokens: the token where greedy decoding
 *                        chooses the correction or the model's own way (0: off)
 * @param checkpointSegments 0, or N >= 2 ({@code activation_checkpointing: N}): activation checkpointing in N runs of
 *                        blocks ({@link LoraTrainer#checkpointing(int)}): about 1/N of the activations at a time for
 *                        (N - 1) / N of a forward pass more
 */
public record Hyperparameters(int nEpochs, int batchSize, float learningRate, int warmupSteps, float weightDecay,
                              float maxGradNorm, int loraRank, float loraAlpha, List<String> targetModules, float beta, float nllWeight,
                              float dpoWeight, double validationSplit, int seed, boolean activationCheckpointing,
                              float klWeight, int replay, boolean earlyStopping, int onPolicy, float adamEpsilon,
                              float unlikelihoodWeight, float guardWeight, int loraLayers, Stops stops, float emaDecay,
                              int checkpointSegments, float firstTokenWeight) {
    /**
     * What a job reads into a stop (a "rejection": the person cut the answer and wrote nothing). Its spelling in the API
     * is the lower-case name.
     */
    public enum Stops {
        /** Stops are left out: only corrections teach. */
        @SerializedName("ignore") IGNORE,
        /** The answer ends there: the model's end-of-turn token is learned after the text the person kept. */
        @SerializedName("end") END,
        /**
         * "Not this, here": the first token the model went on with is made unlikely after the kept text (the
         * unlikelihood term, at {@code unlikelihood_weight}); what comes instead is left to the model.
         */
        @SerializedName("avoid") AVOID;

        public static Stops parse(String s) {
            for (Stops v : values()) {
                if (v.name().toLowerCase(java.util.Locale.ROOT).equals(s)) {
                    return v;
                }
            }
            throw new IllegalArgumentException("stops must be one of ignore, end, avoid");
        }
    }

    /** A job stored before {@code stops} existed reads it as null: those ignored stops. */
    public Stops stops() {
        return stops == null ? Stops.IGNORE : stops;
    }

    public enum Method {
        SFT("sft"), DPO("dpo"), SFT_DPO("sft+dpo");

        public final String name;

        Method(String name) {
            this.name = name;
        }

        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.name.equals(s)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("method must be one of sft, dpo, sft+dpo");
        }
    }

    /** The preservation term's default weight and replay size (chosen by bench/efficacy; docs/training.md). */
    public static final float DEFAULT_KL_WEIGHT = 5f;
    public static final int DEFAULT_REPLAY = 32;
    public static final float DEFAULT_ADAM_EPSILON = LoraTrainer.Optimizer.ADAM_EPSILON;
    public static final float DEFAULT_UNLIKELIHOOD_WEIGHT = 0f;
    /** The unlikelihood weight of a job whose stops are read as {@link Stops#AVOID} and that sets none. */
    public static final float AVOID_STOPS_UNLIKELIHOOD_WEIGHT = 1f;
    /**
     * Off: over three seeds on SmolLM2-135M-Instruct (bench/efficacy, docs/training.md) weight 1 moved mean compliance
     * 0.64 -> 0.66 and leakage 0.065 -> 0.046, less than one seed's spread, and made seed 2 worse; no default change on that.
     */
    public static final float DEFAULT_GUARD_WEIGHT = 0f;
    /**
     * A tenth of the answers held out for early stopping and the gate (at least one), not a fifth: over three seeds on
     * SmolLM2-135M-Instruct (bench/efficacy, docs/training.md) training on 43 answers instead of 38 gave mean held-out
     * compliance 0.71 against 0.67 (per seed +0.05, +0.08, 0.00), steers needed 0.15 against 0.18, every gate passed.
     * Smaller than one seed's spread, but no seed worse. The gate's held-out correction rate rests on fewer forks.
     */
    public static final double DEFAULT_VALIDATION_SPLIT = 0.1;
    /** {@code lora_layers: "auto"}: the last half of the model's blocks. */
    public static final int HALF_THE_LAYERS = -1;
    public static final int DEFAULT_LORA_LAYERS = HALF_THE_LAYERS;
    /**
     * The end: on SmolLM2-135M-Instruct (bench/efficacy, docs/training.md, 2026-12-05) after a second round of steering
     * (the person using the first adapter, stopping its loops), five seeds on each of two habit sets: mean compliance
     * 0.82 against 0.77 and 0.76 against 0.64, loops 0.083 against 0.150 and 0.104 against 0.208 (the base: 0.083,
     * 0.140); on a first round alone (ten seeds, the day before) 0.73 against 0.75, loops 0.157 against 0.149.
     * {@link Stops#AVOID} was below ignoring stops on both sets (0.74 against 0.79, 0.69 against 0.71).
     */
    public static final Stops DEFAULT_STOPS = Stops.END;
    /**
     * 0.9, about the last ten steps: on SmolLM2-135M-Instruct (bench/efficacy, docs/training.md, 2026-12-05) after three
     * rounds of steering, five seeds on each of two habit sets, mean compliance 0.74 against 0.67 and 0.74 against
     * 0.72, the worst seed 0.53 against 0.51 and 0.69 against 0.59, leakage 0.058 against 0.073 and the same 0.029;
     * after two rounds 0.81 against 0.82 and 0.78 against 0.76 (worst seed 0.75 against 0.72, 0.69 against 0.56).
     */
    public static final float DEFAULT_EMA_DECAY = 0.9f;
    /** Off until measured (bench/efficacy, docs/training.md). */
    public static final float DEFAULT_FIRST_TOKEN_WEIGHT = 0f;

    /**
     * Epochs of a default job. Five rather than three: over three seeds on SmolLM2-135M-Instruct (bench/efficacy,
     * docs/training.md) held-out compliance 0.64 against 0.56, steers needed down 76-79% on every seed (three epochs: 64%,
     * 67%, 86%), loops no more (0.17 of answers against 0.19), every adapter passed the gate. What it buys is mostly
     * the slower decay (the checkpoint kept was that of step 45, 54 and 72 of 90, trained at a larger rate than step 54
     * of 54); a larger rate at three epochs (2e-3) learned as much, but the gate refused one of its three adapters for
     * changing unrelated answers. It costs time: 90 steps instead of 54 for 50 steers.
     */
    public static final int DEFAULT_EPOCHS = 5;

    /** The defaults for a method; {@code warmupSteps} -1 means a tenth of the steps. */
    public static Hyperparameters defaults(Method m) {
        return new Hyperparameters(DEFAULT_EPOCHS, 4, 1e-3f, -1, 0f, 1f, 8, 16f, LoraTrainer.ALL_TARGETS, 0.1f,
                m == Method.DPO ? 0.1f : 1f, m == Method.SFT ? 0f : 1f, DEFAULT_VALIDATION_SPLIT, 1, false, DEFAULT_KL_WEIGHT, DEFAULT_REPLAY, false, 0,
                DEFAULT_ADAM_EPSILON, DEFAULT_UNLIKELIHOOD_WEIGHT, DEFAULT_GUARD_WEIGHT, DEFAULT_LORA_LAYERS, DEFAULT_STOPS, DEFAULT_EMA_DECAY, 0,
                DEFAULT_FIRST_TOKEN_WEIGHT);
    }

    /** The optimizer settings of step {@code step} (0-based) of {@code total}. */
    public LoraTrainer.Optimizer optimizerAt(int step, int total) {
        return new LoraTrainer.Optimizer(learningRateAt(step, total), weightDecay, maxGradNorm, adamEpsilon);
    }

    /** How many blocks, from the last down, carry LoRA tensors on a model of {@code modelLayers} blocks. */
    public int adaptedLayers(int modelLayers) {
        if (loraLayers == HALF_THE_LAYERS) {
            return (modelLayers + 1) / 2;
        }
        return loraLayers == LoraTrainer.ALL_LAYERS ? modelLayers : Math.min(loraLayers, modelLayers);
    }

    /** The same with {@code loraLayers} set. */
    public Hyperparameters withLoraLayers(int layers) {
        return new Hyperparameters(nEpochs, batchSize, learningRate, warmupSteps, weightDecay, maxGradNorm, loraRank, loraAlpha, targetModules,
                beta, nllWeight, dpoWeight, validationSplit, seed, activationCheckpointing, klWeight, replay, earlyStopping, onPolicy,
                adamEpsilon, unlikelihoodWeight, guardWeight, layers, stops, emaDecay, checkpointSegments, firstTokenWeight);
    }

    /** Whether the job asks for activation checkpointing at all (of every block, or in runs of blocks). */
    public boolean checkpointing() {
        return activationCheckpointing || checkpointSegments >= 2;
    }

    public LoraTrainer.Weights weights() {
        return new LoraTrainer.Weights(nllWeight, dpoWeight, beta, klWeight, unlikelihoodWeight, guardWeight, firstTokenWeight);
    }

    /** The learning rate of step {@code step} (0-based) of {@code total}: linear warm-up, then cosine decay to lr/10. */
    public float learningRateAt(int step, int total) {
        int warmup = warmupSteps >= 0 ? warmupSteps : total / 10;
        if (step < warmup) {
            return learningRate * (step + 1) / (warmup + 1);
        }
        double progress = total - warmup <= 1 ? 0 : (double) (step - warmup) / (total - warmup - 1);
        return (float) (learningRate * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress))));
    }
}
