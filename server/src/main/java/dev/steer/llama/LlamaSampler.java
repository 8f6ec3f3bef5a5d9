package dev.steer.llama;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * How one sequence picks its next token: an optional GBNF grammar, then penalties, DRY, top-k, top-p, min-p and
 * temperature, then a seeded random draw (or greedy at temperature 0). Stateful (grammar position, penalty history,
 * random state): one per sequence, driven by one thread.
 */
public final class LlamaSampler extends NativeHandle {
    /**
     * @param seed         random seed; negative: a random one
     * @param grammar      GBNF with a {@code root} rule, or null for unconstrained output
     * @param lazyPatterns with a grammar: it applies only once the output matches one of these regexes (tool calls)
     * @param lazyTokens   with a grammar: ... or once one of these tokens is produced
     * @param grammarPrefill with a (non-lazy) grammar: text the prompt already ends with that the grammar begins with
     *                     (a chat template's generation prompt, which llama.cpp's tool-call grammars start with): the
     *                     grammar is advanced over its tokens before the first sample, as llama.cpp's common_sampler does
     * @param dry          the DRY penalty; null: none was chosen, and the server's choice stands: off, unless an adapter
     *                     writes the answer ({@code engine.GenerationRequest#withAdapter})
     */
    public record Params(float temperature, int topK, float topP, float minP, int penaltyLastN, float repeatPenalty,
                         float frequencyPenalty, float presencePenalty, Dry dry, long seed, String grammar,
                         List<String> lazyPatterns, int[] lazyTokens, String grammarPrefill) {
        public static Params greedy() {
            return new Params(0f, 0, 1f, 0f, 64, 1f, 0f, 0f, null, 0, null, List.of(), new int[0], null);
        }

        public static Params sampling(float temperature, long seed) {
            return new Params(temperature, 40, 0.95f, 0.05f, 64, 1f, 0f, 0f, null, seed, null, List.of(), new int[0], null);
        }

        /** Another grammar, applying from the first token (the prefill, if any, was the old grammar's). */
        public Params withGrammar(String gbnf) {
            return withGrammar(gbnf, null);
        }

        /** A grammar that begins with {@code prefill}, text the prompt already ends with. */
        public Params withGrammar(String gbnf, String prefill) {
            return new Params(temperature, topK, topP, minP, penaltyLastN, repeatPenalty, frequencyPenalty,
                    presencePenalty, dry, seed, gbnf, lazyPatterns, lazyTokens, prefill);
        }

        public Params withLazyGrammar(String gbnf, List<String> patterns, int[] tokens) {
            return new Params(temperature, topK, topP, minP, penaltyLastN, repeatPenalty, frequencyPenalty,
                    presencePenalty, dry, seed, gbnf, List.copyOf(patterns), tokens.clone(), null);
        }

        public Params withPenalties(int lastN, float repeat, float frequency, float presence) {
            return new Params(temperature, topK, topP, minP, lastN, repeat, frequency, presence, dry, seed, grammar,
                    lazyPatterns, lazyTokens, grammarPrefill);
        }

        public Params withDry(Dry d) {
            return new Params(temperature, topK, topP, minP, penaltyLastN, repeatPenalty, frequencyPenalty,
                    presencePenalty, d, seed, grammar, lazyPatterns, lazyTokens, grammarPrefill);
        }

        /** The same settings, grammar and prefill included, with another seed. */
        public Params withSeed(long s) {
            return new Params(temperature, topK, topP, minP, penaltyLastN, repeatPenalty, frequencyPenalty,
                    presencePenalty, dry, s, grammar, lazyPatterns, lazyTokens, grammarPrefill);
        }

        boolean isLazy() {
            return !lazyPatterns.isEmpty() || lazyTokens.length > 0;
        }
    }

    /**
     * llama.cpp's DRY ("don't repeat yourself") penalty, as llama-server takes it: a token that would make the output
     * repeat, for more than {@code allowedLength} tokens, a run it already holds loses {@code multiplier *
     * base^(run length - allowedLength)} from its logit; a run does not reach across a {@code breakers} string.
     * Short repeats (a word, "Step 3:") cost nothing, a sentence said again costs more with every token.
     *
     * @param multiplier    0: off
     * @param lastN         how many of the latest tokens are searched for runs (at most the model's training context)
     */
    public record Dry(float multiplier, float base, int allowedLength, int lastN, List<String> breakers) {
        /** llama-server's defaults, off. */
        public static final List<String> BREAKERS = List.of("\n", ":", "\"", "*");
        /** The most breakers a request may give (llama-server's default list has 4): each costs a pass over the vocabulary. */
        public static final int MAX_BREAKERS = 4;
        public static final Dry OFF = new Dry(0f, 1.75f, 2, 64, BREAKERS);

        public Dry {
            breakers = List.copyOf(breakers);
        }

        public boolean on() {
            return multiplier > 0f && lastN != 0;
        }
    }

    private final LlamaModel model;

    private LlamaSampler(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
    }

    /**
     * A sampler for these parameters. A grammar is untrusted input: it is checked against {@link GrammarLimits} before
     * llama.cpp parses it (a {@link GrammarLimits.Violation}, an IllegalArgumentException, if it is not within them).
     */
    public static LlamaSampler create(LlamaModel model, Params p) {
        if (p.grammar() != null) {
            GrammarLimits.check(p.grammar());
        }
        return createUnchecked(model, p);
    }

    /** Without the grammar checks: for tests that compare them with llama.cpp's own parser. */
    static LlamaSampler createUnchecked(LlamaModel model, Params p) {
        byte[] grammar = p.grammar() == null ? null : p.grammar().getBytes(StandardCharsets.UTF_8);
        Dry dry = p.dry() == null ? Dry.OFF : p.dry();
        byte[][] patterns = null;
        int[] tokens = null;
        if (grammar != null && p.isLazy()) {
            patterns = p.lazyPatterns().stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
            tokens = p.lazyTokens();
        }
        LlamaSampler s = new LlamaSampler(model, nativeCreate(model.handle(), p.temperature(), p.topK(), p.topP(), p.minP(),
                p.penaltyLastN(), p.repeatPenalty(), p.frequencyPenalty(), p.presencePenalty(), dry.multiplier(),
                dry.base(), dry.allowedLength(), dry.lastN(),
                dry.breakers().stream().map(b -> b.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new),
                p.seed(), grammar, patterns, tokens));
        if (grammar != null && !p.isLazy() && p.grammarPrefill() != null && !p.grammarPrefill().isEmpty()) {
            try {
                for (int t : model.tokenize(p.grammarPrefill(), false, true)) {
                    s.accept(t);
                }
            } catch (RuntimeException e) {
                s.close();
                throw new IllegalArgumentException("the grammar does not begin with the generation prompt: " + e.getMessage(), e);
            }
        }
        return s;
    }

    /** Picks the next token from the logits at a batch index of the context's last decode, and accepts it. */
    public int sample(LlamaContext context, int batchIndex) {
        return nativeSample(handle(), context.handle(), batchIndex);
    }

    /** Whether the grammar (if any) allows this token next. */
    public boolean canAccept(int token) {
        return nativeCanAccept(handle(), token);
    }

    /** Advances the state over a token that was not sampled here (e.g. a human correction). */
    public void accept(int token) {
        nativeAccept(handle(), token);
    }

    /** An independent copy with the same state. */
    public LlamaSampler copy() {
        return new LlamaSampler(model, nativeClone(handle()));
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        model.release();
    }

    private static native long nativeCreate(long model, float temperature, int topK, float topP, float minP,
                                            int penaltyLastN, float repeatPenalty, float frequencyPenalty,
                                            float presencePenalty, float dryMultiplier, float dryBase,
                                            int dryAllowedLength, int dryLastN, byte[][] dryBreakers, long seed,
                                            byte[] grammar, byte[][] lazyPatterns, int[] lazyTokens);

    private static native void nativeFree(long h);

    private static native long nativeClone(long h);

    private static native int nativeSample(long h, long ctx, int idx);

    private static native boolean nativeCanAccept(long h, int token);

    private static native void nativeAccept(long h, int token);
}
