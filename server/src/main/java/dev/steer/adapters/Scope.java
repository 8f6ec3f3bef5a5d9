package dev.steer.adapters;

import com.google.gson.Gson;
import dev.steer.engine.Engine;
import dev.steer.llama.LayerProbe;
import dev.steer.llama.LlamaModel;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * Which prompts an adapter serves: those that look like the prompts its steers were made on ({@code steered}) more
 * than like ordinary prompts nobody steered ({@code unsteered}: the job's replay prompts and the other built-in ordinary
 * prompts a job has, JobRunner.unsteeredPrompts). Any adapter changes about
 * a fifth of unrelated greedy answers at their near-ties (docs/training.md, "The floor of unrelated answers
 * unchanged"), so an adapter that serves only near its steers leaves the rest exactly as the base model answers them:
 * measured on SmolLM2-135M, unrelated answers unchanged 94-100% instead of 50-67% (docs/training.md, "Scope, as
 * served" and the twenty-fifth session).
 *
 * <p>A prompt is compared by what block {@code layer} reads of its last {@link #TOKENS} tokens (templated as the engine
 * sees them): the mean hidden state entering that block ({@link LayerProbe}: the base model's forward pass up to there),
 * or with {@code layer} 0 the sum of the tokens' input embeddings ({@link LlamaModel#embeddingSum}, no forward pass).
 * A job's scope names the first block its adapter changes, whose input is exactly what the adapter reads: there a
 * question's form ("Is ...?", "Does ...?") weighs beside its topic, and a yes/no habit steered on ten questions
 * reached all eight held-out ones instead of five (docs/training.md, "Scope", twenty-eighth session). Prompts are
 * compared by cosine: one goes to the adapter when its {@link #NEAREST} nearest steered prompts are nearer on average
 * than its {@link #NEAREST} nearest unsteered ones, less {@code margin} (a margin above 0 leans towards the adapter).
 * Three, not one: the built-in replay prompts are ordinary requests of many kinds, and one of them is often of the
 * habit's kind ("How do I boil an egg?" for a habit of how-to answers); the one nearest prompt then decides by a hair,
 * the three nearest by which side has more of that kind (docs/training.md, "Scope").
 *
 * <p>The scope keeps the prompts' tokens, not vectors: what a prompt is compared by can change without touching
 * stored adapters. A scope stored without a layer (before the twenty-eighth session) routes by token embeddings.
 */
public record Scope(List<int[]> steered, List<int[]> unsteered, double margin, int layer) {
    /** A prompt's last tokens that stand for it: the last user turn and the assistant's header in a chat. */
    public static final int TOKENS = Engine.PROBE_TOKENS;
    /** How many of the nearest prompts on each side are averaged. */
    public static final int NEAREST = 3;
    private static final Gson GSON = new Gson();

    public Scope {
        if (steered.isEmpty() || unsteered.isEmpty()) {
            throw new IllegalArgumentException("a scope needs steered and unsteered prompts");
        }
        if (layer < 0) {
            throw new IllegalArgumentException("a scope's layer is 0 (token embeddings) or a block's index, not " + layer);
        }
        steered = List.copyOf(steered);
        unsteered = List.copyOf(unsteered);
    }

    /**
     * The scope's prompts as this model's vectors, computed once.
     *
     * @param probes the probe of a block's input on this model ({@code Engine.layerProbe}); asked only when
     *               {@code layer} is above 0
     */
    public Router router(LlamaModel model, IntFunction<LayerProbe> probes) {
        Function<int[], float[]> read = layer == 0 ? model::embeddingSum : probes.apply(layer)::meanInput;
        Function<int[], float[]> vectors = p -> vector(read, p);
        return new Router(vectors, steered.stream().map(vectors).toArray(float[][]::new),
                unsteered.stream().map(vectors).toArray(float[][]::new), margin);
    }

    /** Decides for one prompt at a time; immutable, so any thread may ask. */
    public static final class Router {
        private final Function<int[], float[]> vectors;
        private final float[][] steered, unsteered;
        private final double margin;

        Router(Function<int[], float[]> vectors, float[][] steered, float[][] unsteered, double margin) {
            this.vectors = vectors;
            this.steered = steered;
            this.unsteered = unsteered;
            this.margin = margin;
        }

        /** Whether the adapter serves {@code prompt} (its tokens as the engine sees them). */
        public boolean serves(int[] prompt) {
            float[] v = vectors.apply(prompt);
            return nearest(v, steered) > nearest(v, unsteered) - margin;
        }

        /** The mean cosine of the {@link #NEAREST} prompts nearest {@code v} (all of them when there are fewer). */
        private static double nearest(float[] v, float[][] prompts) {
            double[] cos = new double[prompts.length];
            for (int j = 0; j < prompts.length; j++) {
                for (int i = 0; i < v.length; i++) {
                    cos[j] += (double) v[i] * prompts[j][i];
                }
            }
            Arrays.sort(cos);
            int k = Math.min(NEAREST, cos.length);
            double sum = 0;
            for (int j = cos.length - k; j < cos.length; j++) {
                sum += cos[j];
            }
            return sum / k;
        }
    }

    /**
     * What {@code prompt} is compared by in a scope of block {@code layer}, as {@link #router} reads it (the probe keeps
     * it: a server reads a job's prompts before the job, train/JobPreparation).
     */
    public static float[] vectorOf(LlamaModel model, IntFunction<LayerProbe> probes, int layer, int[] prompt) {
        return vector(layer == 0 ? model::embeddingSum : probes.apply(layer)::meanInput, prompt);
    }

    /** The unit vector a prompt is compared by: {@code read} (a sum or mean of vectors) of its last {@link #TOKENS} tokens, normalized. */
    static float[] vector(Function<int[], float[]> read, int[] prompt) {
        float[] s = read.apply(Arrays.copyOfRange(prompt, Math.max(0, prompt.length - TOKENS), prompt.length));
        double norm = 0;
        for (float x : s) {
            norm += (double) x * x;
        }
        float inv = norm > 0 ? (float) (1 / Math.sqrt(norm)) : 0f;
        for (int i = 0; i < s.length; i++) {
            s[i] *= inv;
        }
        return s;
    }

    public String toJson() {
        return GSON.toJson(this);
    }

    public static Scope fromJson(String json) {
        Scope s = GSON.fromJson(json, Scope.class);
        return new Scope(s.steered(), s.unsteered(), s.margin(), s.layer());  // none stored (before the twenty-eighth session): 0
    }
}
