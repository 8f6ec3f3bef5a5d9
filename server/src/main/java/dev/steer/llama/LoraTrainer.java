package dev.steer.llama;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Trains a LoRA adapter for a loaded model with our own ggml training graph (native/src/train), reading the very
 * weights serving uses. Parameters: LoRA A/B on the chosen targets only. One example = an answer as the person left
 * it, each token marked as prompt, approved text or correction, and optionally the rejected span (what the model
 * generated instead); see {@link Example} and {@link Weights} for the loss. Not thread-safe.
 */
public final class LoraTrainer extends NativeHandle {
    public static final List<String> ALL_TARGETS = List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");

    /** What the row predicting a token learns (see {@link Example}). */
    public static final byte NONE = 0, KEEP = 1, LEARN = 2, AVOID = 3;

    /**
     * One training example: an answer as the person left it. {@code tokens} is the prompt, then the answer (the
     * model's text the person approved, their corrections, the continuations they let run); {@code roles} says per
     * token what the row predicting it learns: {@link #NONE} (the prompt), {@link #KEEP} (approved text: stay the base
     * model there, by the KL term), {@link #LEARN} (a correction: imitate it) or {@link #AVOID} (the model's own text
     * saying again what it said: make that token unlikely there). {@code rejected} (may be empty) is
     * what the model had generated at {@code fork}, the index in {@code tokens} of the last correction's first
     * token; it is compared with the corrections by the preference term. {@code fork} is -1 without a rejected span.
     */
    public record Example(int[] tokens, byte[] roles, int fork, int[] rejected) {
        public Example {
            if (roles.length != tokens.length) {
                throw new IllegalArgumentException("one role per token");
            }
        }

        /** The single-steer form: context (nothing learned there), then the correction, then what was rejected. */
        public Example(int[] context, int[] chosen, int[] rejected) {
            this(concat(context, chosen), roles(context.length, chosen.length), rejected.length > 0 ? context.length : -1, rejected);
        }

        /** The tokens before the fork (all of them without one). */
        public int[] context() {
            return java.util.Arrays.copyOf(tokens, fork >= 0 ? fork : tokens.length);
        }

        /** The tokens from the fork on (the last correction and what follows it); empty without a fork. */
        public int[] chosen() {
            return fork >= 0 ? java.util.Arrays.copyOfRange(tokens, fork, tokens.length) : new int[0];
        }

        /** How many tokens carry a role. */
        public int count(byte role) {
            int n = 0;
            for (int i = 1; i < roles.length; i++) {
                n += roles[i] == role ? 1 : 0;
            }
            return n;
        }

        /** The tokens that carry a role, in order (what the rows of that role predict). */
        public int[] tokensOf(byte role) {
            int[] out = new int[count(role)];
            for (int i = 1, k = 0; i < roles.length; i++) {
                if (roles[i] == role) {
                    out[k++] = tokens[i];
                }
            }
            return out;
        }

        private static byte[] roles(int context, int chosen) {
            byte[] r = new byte[context + chosen];
            java.util.Arrays.fill(r, context, context + chosen, LEARN);
            return r;
        }

        private static int[] concat(int[] a, int[] b) {
            int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, out, a.length, b.length);
            return out;
        }
    }

    /**
     * loss = nll * mean CE(learn tokens) + kl * mean KL(base || adapter) over the keep rows
     *      + unlikelihood * mean -log(1 - p(token)) over the avoid rows
     *      + dpo * -log sigmoid(beta * [(lp(chosen) - ref(chosen)) - (lp(rejected) - ref(rejected))])
     *      + guard * sum over the guarded (keep row, token) pairs of max(0, lp(token) - lp(approved) + margin) / guarded rows
     *      + first * mean CE(each correction's first word)
     *
     * @param unlikelihood weight of the unlikelihood term on {@link #AVOID} tokens (Welleck et al. 2019)
     * @param guard weight of the guard: at a keep row, a guarded token ({@link Reference#guard}, a job's correction
     *              tokens) that the base holds at least {@link #GUARD_MARGIN} nats below the approved token must stay
     *              that far below it (native trainer.h says why)
     * @param first weight of the cross-entropy on the first word of each correction (of each run of {@link #LEARN}
     *              tokens, its first token that is not only whitespace) once more, a mean over corrections: where
     *              greedy decoding chooses between the correction and what the model said; the rest of a correction
     *              follows once that token is said
     */
    public record Weights(float nll, float dpo, float beta, float kl, float unlikelihood, float guard, float first) {
        public Weights(float nll, float dpo, float beta, float kl, float unlikelihood, float guard) {
            this(nll, dpo, beta, kl, unlikelihood, guard, 0f);
        }

        public Weights(float nll, float dpo, float beta, float kl, float unlikelihood) {
            this(nll, dpo, beta, kl, unlikelihood, 0f);
        }

        public Weights(float nll, float dpo, float beta, float kl) {
            this(nll, dpo, beta, kl, 0f, 0f);
        }

        public Weights(float nll, float dpo, float beta) {
            this(nll, dpo, beta, 0f, 0f, 0f);
        }

        public static Weights sftOnly() {
            return new Weights(1f, 0f, 0.1f, 0f, 0f, 0f);
        }

        /** What the native trainer reads, in this order. */
        float[] toArray() {
            return new float[] {nll, dpo, beta, kl, unlikelihood, guard, first};
        }
    }

    /** How far below a keep row's approved token, in log-probability, the guard holds a guarded token (native GUARD_MARGIN). */
    public static final float GUARD_MARGIN = 1.0f;

    /** How many of the base's most likely next tokens a keep row's reference holds (native REFERENCE_TOP_K). */
    public static final int REFERENCE_TOP_K = 256;

    /**
     * The base model (adapter off) on one example: summed log-probabilities of the learn tokens and of the rejected
     * span, and on each keep row its {@link #REFERENCE_TOP_K} most likely next tokens with their probabilities
     * ([keep rows * K]; the rest of a row's mass counts as spread evenly over the other tokens) and the mean
     * entropy of those targets: what the KL term pulls the adapter toward. {@code guard} holds the guard term's
     * (keep row index, token) pairs, flattened: at that keep row (the index among the example's keep rows) the
     * token must stay below the approved one (empty: nothing guarded; see {@link #guarding}).
     */
    public record Reference(float logpChosen, float logpRejected, int[] keepIds, float[] keepProbs, float keepEntropy, int[] guard) {
        public Reference(float logpChosen, float logpRejected, int[] keepIds, float[] keepProbs, float keepEntropy) {
            this(logpChosen, logpRejected, keepIds, keepProbs, keepEntropy, new int[0]);
        }

        public Reference(float logpChosen, float logpRejected) {
            this(logpChosen, logpRejected, new int[0], new float[0], 0f);
        }

        /**
         * This reference with {@code tokens} guarded at the keep rows of {@code e} after its first correction (the
         * text that follows a correction, where the correction must not be said again), except where one of them is
         * the row's own next token (the person approved it there). An example without a correction gets none: the
         * start of an answer is where a habit is meant to show, and guarding it there held the habit back (v25-v28,
         * docs/training.md).
         */
        public Reference guarding(Example e, Set<Integer> tokens) {
            List<Integer> pairs = new ArrayList<>();
            int firstCorrection = -1;
            for (int i = 1; i < e.roles().length && firstCorrection < 0; i++) {
                firstCorrection = e.roles()[i] == LEARN ? i : -1;
            }
            for (int i = 1, row = 0; i < e.roles().length; i++) {
                if (e.roles()[i] != KEEP) {
                    continue;
                }
                if (firstCorrection > 0 && i > firstCorrection) {
                    for (int t : tokens) {
                        if (t != e.tokens()[i]) {
                            pairs.add(row);
                            pairs.add(t);
                        }
                    }
                }
                row++;
            }
            return new Reference(logpChosen, logpRejected, keepIds, keepProbs, keepEntropy, pairs.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /** @param kl mean KL(base || adapter) over the keep rows (0 when the weights have no KL term) */
    public record Evaluation(float loss, float logpChosen, float logpRejected, float kl) {}

    /**
     * What greedy decoding would write at each learn row and each keep row, given the text before it (the argmax),
     * in token order: compared with {@link Example#tokensOf}, a teacher-forced check of generation in one forward
     * pass (a greedy continuation from a fork begins with the correction exactly when every correction token is
     * the argmax after the ones before it).
     */
    public record Predictions(int[] learn, int[] keep) {}

    private final LlamaModel model;
    /** The thread count the native trainer reads before each graph ({@link #threads}); lives as long as this object. */
    private final ByteBuffer threadCell = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    private static final VarHandle THREAD_CELL = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private LoraTrainer(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
    }

    /** A trainer with fresh LoRA tensors on every layer (A random, B zero: the adapter starts as the base model). */
    public static LoraTrainer create(LlamaModel model, List<String> targets, int rank, float alpha, int seed, int threads) {
        return create(model, targets, rank, alpha, ALL_LAYERS, seed, threads);
    }

    /** Every layer carries LoRA tensors. */
    public static final int ALL_LAYERS = 0;

    /**
     * A trainer with fresh LoRA tensors on the last {@code layers} transformer blocks ({@link #ALL_LAYERS}, or more
     * than the model has: every block). The blocks below are the base model's whatever the training, so their output
     * is computed once per distinct packed sequence and kept while the trainer lives, and no gradient flows through
     * them: a step costs the adapted blocks and the loss head only (docs/training.md).
     */
    public static LoraTrainer create(LlamaModel model, List<String> targets, int rank, float alpha, int layers, int seed, int threads) {
        byte[][] t = targets.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
        LoraTrainer trainer = new LoraTrainer(model, nativeCreate(model.handle(), t, rank, alpha, layers, seed, threads));
        try {
            trainer.threads(threads);
            nativeSetThreadCell(trainer.handle(), trainer.threadCell);
        } catch (RuntimeException e) {
            trainer.close();
            throw e;
        }
        return trainer;
    }

    /** The bytes of the trainer's graph memory: its largest graph so far (ggml's scheduler keeps that buffer). */
    public long computeBufferBytes() {
        return nativeComputeBufferBytes(handle());
    }

    /**
     * Activation checkpointing (off at first): the backward pass keeps only each transformer block's input and
     * computes the blocks again as it goes, so training needs far less memory, for one more forward pass. The
     * gradients are the same.
     */
    public LoraTrainer checkpointing(boolean on) {
        nativeSetCheckpointing(handle(), on ? -1 : 0);
        return this;
    }

    /**
     * Activation checkpointing in {@code segments} runs of consecutive LoRA blocks (2 or more; at most one per
     * block): the backward pass keeps only each run's input, and computes every run but the last again, one run at
     * a time. Between off and {@link #checkpointing(boolean) every block}: with two runs about half the
     * activations for half a forward pass more. The gradients are the same.
     */
    public LoraTrainer checkpointing(int segments) {
        if (segments < 2) {
            throw new IllegalArgumentException("checkpointing in segments needs 2 or more, not " + segments);
        }
        nativeSetCheckpointing(handle(), segments);
        return this;
    }

    /** What the backward pass computes again where it reads it, instead of keeping it from the forward pass. */
    public enum Recompute {
        /** Every activation the backward pass reads is kept. */
        NONE,
        /** The gated FFN product and the RMS-normed matmul inputs, from tensors kept anyway: no time (the default). */
        ELEMENTWISE,
        /** Also the attention probabilities and merged heads: two small matmuls again per block (about 8% of a
         *  SmolLM2 step at 256 tokens), for the activations that grow with the square of the length. */
        ATTENTION
    }

    /** Which activations the backward pass computes again (ELEMENTWISE at first); the gradients are the same, bit for bit. */
    public LoraTrainer recompute(Recompute level) {
        nativeSetRecompute(handle(), level.ordinal(), EVERY_BLOCK);
        return this;
    }

    /**
     * ATTENTION in the lowest {@code blocks} blocks of each backward graph only (with the plain backward: the lowest
     * adapted blocks), ELEMENTWISE in the others: each such block saves its attention probabilities and merged heads
     * (SmolLM2, 256 tokens: 2.8 MiB) for its share of ATTENTION's time, so a trainer spends only the time for the
     * memory it must save. The gradients are the same, bit for bit.
     */
    public LoraTrainer recomputeAttention(int blocks) {
        if (blocks < 0) {
            throw new IllegalArgumentException("blocks must be >= 0");
        }
        nativeSetRecompute(handle(), Recompute.ATTENTION.ordinal(), blocks);
        return this;
    }

    /**
     * Whether the largest activations the backward pass reads (the attention probabilities in F16, the FFN's gate and
     * up outputs in BF16) are kept between the forward and the backward pass in 16 bits (off at first). The forward
     * pass and the loss are unchanged; the gradients are those of the activations rounded to 16 bits, in about a third
     * less graph memory (docs/trainer.md, "Activations kept in 16 bits").
     */
    public LoraTrainer keepActivationsIn16Bits(boolean on) {
        nativeSetKeptIn16Bits(handle(), on);
        return this;
    }

    /**
     * CPU threads for the trainer's next graph (at least 1; {@link #create} set the first count). Any thread may call
     * it at any time, during a step too: each example's forward and backward graph reads the count when it starts,
     * so serving can take cores back within one graph rather than one step.
     */
    public LoraTrainer threads(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + n);
        }
        THREAD_CELL.setVolatile(threadCell, 0, n);  // only the cell: safe while the native trainer is busy or closed
        return this;
    }

    /** Logits of every position of {@code tokens} from the training graph, [tokens.length * vocab]. */
    public float[] logits(int[] tokens, boolean withAdapter) {
        return nativeLogits(handle(), tokens, withAdapter);
    }

    public Reference reference(Example e) {
        float[] r = nativeReference(handle(), e.tokens(), e.roles(), e.fork(), e.rejected());
        int n = (r.length - 3) / 2;
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (int) r[3 + n + i];
        }
        return new Reference(r[0], r[1], ids, java.util.Arrays.copyOfRange(r, 3, 3 + n), r[2]);
    }

    /**
     * The input of the first adapted block for {@code e} as its reference and an SFT step read it: the base model's
     * blocks below (no LoRA there), computed once per trainer and kept. Empty when every block is adapted. A server
     * keeps it beside the reference (train/References) and hands it to the next job's trainer ({@link #keepInput}),
     * which then computes none of those blocks for {@code e}.
     */
    public float[] keptInput(Example e) {
        return nativeKeptInput(handle(), e.tokens(), e.roles(), e.fork(), e.rejected());
    }

    /**
     * Gives this trainer {@code e}'s {@link #keptInput} computed by another trainer over the same model with the same
     * first adapted block (the numbers that trainer computed: this one then never computes them itself).
     *
     * @throws IllegalArgumentException every block is adapted, or {@code input} is not [tokens x embedding] floats
     */
    public void keepInput(Example e, float[] input) {
        nativeKeepInput(handle(), e.tokens(), e.roles(), e.fork(), e.rejected(), input);
    }

    /** How many times this trainer computed the blocks below the first adapted one (for tests). */
    public int lowerPasses() {
        return nativeLowerPasses(handle());
    }

    /**
     * Drops the inputs this trainer keeps ({@link #keptInput}): a trainer that only computes what a server keeps
     * (train/JobPreparation) would otherwise hold them all until it is closed.
     */
    public void forgetKeptInputs() {
        nativeForgetKeptInputs(handle());
    }

    /** The first block that carries LoRA: 0 when every block does, else the first of the last {@code layers}. */
    public int firstAdapted() {
        return nativeFirstAdapted(handle());
    }

    public Evaluation evaluate(Example e, Reference ref, Weights w) {
        float[] r = nativeEvaluate(handle(), e.tokens(), e.roles(), e.fork(), e.rejected(), ref.logpChosen(), ref.logpRejected(),
                ref.keepIds(), ref.keepProbs(), ref.keepEntropy(), ref.guard(), w.toArray());
        return new Evaluation(r[0], r[1], r[2], r[3]);
    }

    public Predictions predict(Example e, boolean withAdapter) {
        int[] r = nativePredict(handle(), e.tokens(), e.roles(), e.fork(), e.rejected(), withAdapter);
        return new Predictions(java.util.Arrays.copyOfRange(r, 1, 1 + r[0]), java.util.Arrays.copyOfRange(r, 1 + r[0], r.length));
    }

    /** Every LoRA parameter, to {@link #restore} later (a job keeps its best checkpoint this way). */
    public float[] snapshot() {
        return nativeSnapshot(handle());
    }

    public void restore(float[] snapshot) {
        nativeRestore(handle(), snapshot);
    }

    /** d loss / d tensor, e.g. "blk.0.attn_k.weight.lora_a". */
    public float[] gradient(Example e, Reference ref, Weights w, String tensor) {
        return nativeGradient(handle(), e.tokens(), e.roles(), e.fork(), e.rejected(), ref.logpChosen(), ref.logpRejected(),
                ref.keepIds(), ref.keepProbs(), ref.keepEntropy(), ref.guard(), w.toArray(), tensor.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * AdamW settings of one step; {@code maxGradNorm} clips the batch's gradient to that global norm (0: off);
     * {@code adamEpsilon} is Adam's epsilon (p -= lr * m / (sqrt(v) + eps)).
     */
    public record Optimizer(float learningRate, float weightDecay, float maxGradNorm, float adamEpsilon) {
        /** Adam's usual epsilon: every entry moves by about the learning rate whatever its gradient's size. */
        public static final float ADAM_EPSILON = 1e-8f;

        public Optimizer(float learningRate, float weightDecay, float maxGradNorm) {
            this(learningRate, weightDecay, maxGradNorm, ADAM_EPSILON);
        }
    }

    /** The batch's mean loss and its gradient's global norm, both before the step (the norm before clipping). */
    public record StepResult(float loss, float gradNorm) {}

    /** One AdamW step on the batch's mean loss, without clipping; returns that loss (before the step). */
    public float step(List<Example> batch, List<Reference> refs, Weights w, float learningRate, float weightDecay) {
        return step(batch, refs, w, new Optimizer(learningRate, weightDecay, 0f)).loss();
    }

    /** One AdamW step on the batch's mean loss (gradients accumulated over its examples, then clipped). */
    public StepResult step(List<Example> batch, List<Reference> refs, Weights w, Optimizer o) {
        int n = batch.size();
        int[][] tokens = new int[n][], rejected = new int[n][], keepIds = new int[n][], guards = new int[n][];
        byte[][] roles = new byte[n][];
        float[][] keepProbs = new float[n][];
        int[] forks = new int[n];
        float[] r = new float[2 * n], entropy = new float[n];
        for (int i = 0; i < n; i++) {
            Example e = batch.get(i);
            Reference ref = refs.get(i);
            tokens[i] = e.tokens();
            roles[i] = e.roles();
            forks[i] = e.fork();
            rejected[i] = e.rejected();
            r[2 * i] = ref.logpChosen();
            r[2 * i + 1] = ref.logpRejected();
            keepIds[i] = ref.keepIds();
            keepProbs[i] = ref.keepProbs();
            entropy[i] = ref.keepEntropy();
            guards[i] = ref.guard();
        }
        float[] out = nativeStep(handle(), tokens, roles, forks, rejected, r, keepIds, keepProbs, entropy, guards, w.toArray(),
                o.learningRate(), o.weightDecay(), o.maxGradNorm(), o.adamEpsilon());
        return new StepResult(out[0], out[1]);
    }

    public float[] tensor(String name) {
        return nativeGetTensor(handle(), name.getBytes(StandardCharsets.UTF_8));
    }

    public void setTensor(String name, float[] values) {
        nativeSetTensor(handle(), name.getBytes(StandardCharsets.UTF_8), values);
    }

    /** Writes the adapter as GGUF (written to a temporary file, then renamed into place). */
    public void save(Path path) {
        nativeSave(handle(), path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8));
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        model.release();
    }

    private static native long nativeCreate(long model, byte[][] targets, int rank, float alpha, int layers, int seed, int threads);

    private static native void nativeFree(long h);

    private static native void nativeSetCheckpointing(long h, int segments);
    /** nativeSetRecompute's attention blocks for every block (trainer.h, ALL_BLOCKS). */
    private static final int EVERY_BLOCK = -1;

    private static native void nativeSetRecompute(long h, int level, int attentionBlocks);

    private static native void nativeSetKeptIn16Bits(long h, boolean on);

    private static native long nativeComputeBufferBytes(long h);

    private static native void nativeSetThreadCell(long h, ByteBuffer cell);

    private static native float[] nativeLogits(long h, int[] tokens, boolean withAdapter);

    private static native float[] nativeReference(long h, int[] tokens, byte[] roles, int fork, int[] rejected);

    private static native float[] nativeKeptInput(long h, int[] tokens, byte[] roles, int fork, int[] rejected);

    private static native void nativeKeepInput(long h, int[] tokens, byte[] roles, int fork, int[] rejected, float[] input);

    private static native int nativeLowerPasses(long h);

    private static native void nativeForgetKeptInputs(long h);

    private static native int nativeFirstAdapted(long h);

    private static native float[] nativeEvaluate(long h, int[] tokens, byte[] roles, int fork, int[] rejected, float refC, float refR,
                                                 int[] keepIds, float[] keepProbs, float keepEntropy, int[] guard, float[] weights);

    private static native float[] nativeGradient(long h, int[] tokens, byte[] roles, int fork, int[] rejected, float refC, float refR,
                                                 int[] keepIds, float[] keepProbs, float keepEntropy, int[] guard, float[] weights,
                                                 byte[] tensor);

    private static native float[] nativeStep(long h, int[][] tokens, byte[][] roles, int[] forks, int[][] rejected, float[] refs,
                                             int[][] keepIds, float[][] keepProbs, float[] keepEntropy, int[][] guards, float[] weights, float lr, float wd, float maxGradNorm, float adamEpsilon);

    private static native int[] nativePredict(long h, int[] tokens, byte[] roles, int fork, int[] rejected, boolean withAdapter);

    private static native float[] nativeSnapshot(long h);

    private static native void nativeRestore(long h, float[] values);

    private static native float[] nativeGetTensor(long h, byte[] name);

    private static native void nativeSetTensor(long h, byte[] name, float[] values);

    private static native void nativeSave(long h, byte[] path);
}
