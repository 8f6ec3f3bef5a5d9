package dev.steer.llama;

/**
 * The tokens of one {@link LlamaContext#decode} call, possibly for several sequences at once. Reusable: fill it,
 * decode, {@link #clear()}, fill again; no allocation per step.
 */
public final class Batch {
    final int[] tokens;
    final int[] positions;
    final int[] sequences;
    final boolean[] outputs;
    int size;

    public Batch(int capacity) {
        tokens = new int[capacity];
        positions = new int[capacity];
        sequences = new int[capacity];
        outputs = new boolean[capacity];
    }

    /**
     * Adds a token of sequence {@code seq} at position {@code pos}.
     *
     * @param output keep this position's logits (to sample the next token or read log-probs)
     * @return the token's index in the batch, which {@link LlamaContext#logits} and {@link LlamaSampler#sample} take
     */
    public int add(int token, int pos, int seq, boolean output) {
        if (size == tokens.length) {
            throw new IllegalStateException("batch is full (" + size + " tokens)");
        }
        tokens[size] = token;
        positions[size] = pos;
        sequences[size] = seq;
        outputs[size] = output;
        return size++;
    }

    public int size() {
        return size;
    }

    public int capacity() {
        return tokens.length;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    public void clear() {
        size = 0;
    }
}
