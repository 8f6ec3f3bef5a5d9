package dev.steer.llama;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * Trains a LoRA adapter for a loaded model with our own ggml training graph (native/src/train), reading the very
 * weights serving uses. Parameters: LoRA A/B on the chosen targets only. One example = context, the chosen span
 * (a correction) and optionally the rejected span (what the model generated instead); see {@link Weights} for the
 * loss. Not thread-safe.
 */
public final class LoraTrainer extends NativeHandle {
    public static final List<String> ALL_TARGETS = List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");

    /** One training example; {@code rejected} may be empty (no preference term then). */
    public record Example(int[] context, int[] chosen, int[] rejected) {}

    /**
     * loss = nll * mean CE(chosen | context) + dpo * -log sigmoid(beta * [(lp(chosen) - ref(chosen)) - (lp(rejected) - ref(rejected))])
     */
    public record Weights(float nll, float dpo, float beta) {
        public static Weights sftOnly() {
            return new Weights(1f, 0f, 0.1f);
        }
    }

    /** Summed log-probabilities of the spans under the base model (adapter off). */
    public record Reference(float logpChosen, float logpRejected) {}

    public record Evaluation(float loss, float logpChosen, float logpRejected) {}

    private final LlamaModel model;

    private LoraTrainer(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
    }

    /** A trainer with fresh LoRA tensors (A random, B zero: the adapter starts as the base model). */
    public static LoraTrainer create(LlamaModel model, List<String> targets, int rank, float alpha, int seed, int threads) {
        byte[][] t = targets.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
        return new LoraTrainer(model, nativeCreate(model.handle(), t, rank, alpha, seed, threads));
    }

    /**
     * Activation checkpointing (off at first): the backward pass keeps only each transformer block's input and
     * computes the blocks again as it goes, so training needs far less memory, for one more forward pass. The
     * gradients are the same.
     */
    public LoraTrainer checkpointing(boolean on) {
        nativeSetCheckpointing(handle(), on);
        return this;
    }

    /** Logits of every position of {@code tokens} from the training graph, [tokens.length * vocab]. */
    public float[] logits(int[] tokens, boolean withAdapter) {
        return nativeLogits(handle(), tokens, withAdapter);
    }

    public Reference reference(Example e) {
        float[] r = nativeReference(handle(), e.context(), e.chosen(), e.rejected());
        return new Reference(r[0], r[1]);
    }

    public Evaluation evaluate(Example e, Reference ref, Weights w) {
        float[] r = nativeEvaluate(handle(), e.context(), e.chosen(), e.rejected(), ref.logpChosen(), ref.logpRejected(), w.nll(), w.dpo(), w.beta());
        return new Evaluation(r[0], r[1], r[2]);
    }

    /** d loss / d tensor, e.g. "blk.0.attn_k.weight.lora_a". */
    public float[] gradient(Example e, Reference ref, Weights w, String tensor) {
        return nativeGradient(handle(), e.context(), e.chosen(), e.rejected(), ref.logpChosen(), ref.logpRejected(),
                w.nll(), w.dpo(), w.beta(), tensor.getBytes(StandardCharsets.UTF_8));
    }

    /** AdamW settings of one step; {@code maxGradNorm} clips the batch's gradient to that global norm (0: off). */
    public record Optimizer(float learningRate, float weightDecay, float maxGradNorm) {}

    /** The batch's mean loss and its gradient's global norm, both before the step (the norm before clipping). */
    public record StepResult(float loss, float gradNorm) {}

    /** One AdamW step on the batch's mean loss, without clipping; returns that loss (before the step). */
    public float step(List<Example> batch, List<Reference> refs, Weights w, float learningRate, float weightDecay) {
        return step(batch, refs, w, new Optimizer(learningRate, weightDecay, 0f)).loss();
    }

    /** One AdamW step on the batch's mean loss (gradients accumulated over its examples, then clipped). */
    public StepResult step(List<Example> batch, List<Reference> refs, Weights w, Optimizer o) {
        int n = batch.size();
        int[][] ctx = new int[n][], chosen = new int[n][], rejected = new int[n][];
        float[] r = new float[2 * n];
        for (int i = 0; i < n; i++) {
            ctx[i] = batch.get(i).context();
            chosen[i] = batch.get(i).chosen();
            rejected[i] = batch.get(i).rejected();
            r[2 * i] = refs.get(i).logpChosen();
            r[2 * i + 1] = refs.get(i).logpRejected();
        }
        float[] out = nativeStep(handle(), ctx, chosen, rejected, r, w.nll(), w.dpo(), w.beta(), o.learningRate(), o.weightDecay(), o.maxGradNorm());
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

    private static native long nativeCreate(long model, byte[][] targets, int rank, float alpha, int seed, int threads);

    private static native void nativeFree(long h);

    private static native void nativeSetCheckpointing(long h, boolean on);

    private static native float[] nativeLogits(long h, int[] tokens, boolean withAdapter);

    private static native float[] nativeReference(long h, int[] context, int[] chosen, int[] rejected);

    private static native float[] nativeEvaluate(long h, int[] context, int[] chosen, int[] rejected, float refC, float refR,
                                                 float nll, float dpo, float beta);

    private static native float[] nativeGradient(long h, int[] context, int[] chosen, int[] rejected, float refC, float refR,
                                                 float nll, float dpo, float beta, byte[] tensor);

    private static native float[] nativeStep(long h, int[][] contexts, int[][] chosen, int[][] rejected, float[] refs,
                                             float nll, float dpo, float beta, float lr, float wd, float maxGradNorm);

    private static native float[] nativeGetTensor(long h, byte[] name);

    private static native void nativeSetTensor(long h, byte[] name, float[] values);

    private static native void nativeSave(long h, byte[] path);
}
