package dev.steer.llama;

import java.util.List;

/**
 * One llama.cpp context: a KV cache holding several independent sequences, decoded together in batches.
 * Not thread-safe: one thread (the engine's decode loop) drives it.
 */
public final class LlamaContext extends NativeHandle {
    public enum FlashAttention { AUTO, OFF, ON }

    /**
     * @param contextSize    KV cache size in tokens, shared by all sequences
     * @param batchSize      most tokens one decode call may take
     * @param microBatchSize most tokens computed at once inside a decode call
     * @param sequences      parallel sequences (ids 0 .. sequences-1)
     * @param f32KvCache     keep K/V in F32 (exact comparisons in tests) instead of F16
     * @param unifiedKvCache one KV buffer shared by all sequences (allows partial copies between them, so
     *                       prompt prefixes can be shared); otherwise each sequence gets contextSize/sequences
     */
    public record Params(int contextSize, int batchSize, int microBatchSize, int sequences, int threads,
                         int batchThreads, FlashAttention flashAttention, boolean f32KvCache, boolean unifiedKvCache) {
        public static Params defaults() {
            int cores = Runtime.getRuntime().availableProcessors();
            return new Params(4096, 512, 512, 1, cores, cores, FlashAttention.AUTO, false, true);
        }

        public Params withContextSize(int n) {
            return new Params(n, batchSize, microBatchSize, sequences, threads, batchThreads, flashAttention, f32KvCache, unifiedKvCache);
        }

        public Params withSequences(int n) {
            return new Params(contextSize, batchSize, microBatchSize, n, threads, batchThreads, flashAttention, f32KvCache, unifiedKvCache);
        }

        public Params withBatchSize(int n) {
            return new Params(contextSize, n, Math.min(n, microBatchSize), sequences, threads, batchThreads, flashAttention, f32KvCache, unifiedKvCache);
        }

        public Params withThreads(int n) {
            return new Params(contextSize, batchSize, microBatchSize, sequences, n, n, flashAttention, f32KvCache, unifiedKvCache);
        }

        public Params withUnifiedKvCache(boolean unified) {
            return new Params(contextSize, batchSize, microBatchSize, sequences, threads, batchThreads, flashAttention, f32KvCache, unified);
        }

        /** F32 KV cache and no flash attention: logits comparable bit for bit. */
        public Params exact() {
            return new Params(contextSize, batchSize, microBatchSize, sequences, threads, batchThreads, FlashAttention.OFF, true, unifiedKvCache);
        }
    }

    /** An adapter and the scale it is applied with. */
    public record AdapterScale(LoraAdapter adapter, float scale) {}

    private final LlamaModel model;
    private final int contextSize;
    private final int perSequenceContext;
    private final int batchSize;
    private final int sequences;

    private List<AdapterScale> adapters = List.of();

    private LlamaContext(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
        int[] info = nativeInfo(handle);  // order fixed by LlamaContext.cpp
        this.contextSize = info[0];
        this.perSequenceContext = info[1];
        this.batchSize = info[2];
        this.sequences = info[4];
    }

    public static LlamaContext create(LlamaModel model, Params p) {
        int fa = switch (p.flashAttention()) {
            case AUTO -> -1;
            case OFF -> 0;
            case ON -> 1;
        };
        long h = nativeCreate(model.handle(), p.contextSize(), p.batchSize(), p.microBatchSize(), p.sequences(),
                p.threads(), p.batchThreads(), fa, p.f32KvCache(), p.unifiedKvCache());
        return new LlamaContext(model, h);
    }

    public LlamaModel model() {
        return model;
    }

    public int contextSize() {
        return contextSize;
    }

    /** Positions one sequence may occupy (0 .. this-1). */
    public int perSequenceContext() {
        return perSequenceContext;
    }

    public int batchSize() {
        return batchSize;
    }

    public int sequences() {
        return sequences;
    }

    public Batch newBatch() {
        return new Batch(batchSize);
    }

    /** Runs the model over the batch, appending its tokens to their sequences' KV cache. */
    public void decode(Batch batch) {
        nativeDecode(handle(), batch.size, batch.tokens, batch.positions, batch.sequences, batch.outputs);
    }

    /** Raw next-token logits at a batch index of the last decode (that index must have asked for output). */
    public float[] logits(int batchIndex) {
        return nativeLogits(handle(), batchIndex);
    }

    public TopLogprobs topLogprobs(int batchIndex, int k) {
        int n = Math.max(0, Math.min(k, model.vocabSize()));
        int[] ids = new int[n];
        float[] lps = new float[n];
        nativeTopLogprobs(handle(), batchIndex, ids, lps);
        return new TopLogprobs(ids, lps);
    }

    public float tokenLogprob(int batchIndex, int token) {
        return nativeTokenLogprob(handle(), batchIndex, token);
    }

    /** Forgets positions [from, to) of a sequence (to = -1: to the end). False if the cache cannot do it. */
    public boolean removeTokens(int seq, int from, int to) {
        return nativeSeqRemove(handle(), seq, from, to);
    }

    /** Makes positions [from, to) of {@code src} part of {@code dst} too, without recomputing them. */
    public void copySequence(int src, int dst, int from, int to) {
        nativeSeqCopy(handle(), src, dst, from, to);
    }

    /** Drops every sequence but this one. */
    public void keepOnly(int seq) {
        nativeSeqKeep(handle(), seq);
    }

    public void clear() {
        nativeClear(handle());
    }

    /** The highest position a sequence holds, or -1 when it is empty. */
    public int lastPosition(int seq) {
        return nativeSeqPosMax(handle(), seq);
    }

    public void setThreads(int threads, int batchThreads) {
        nativeSetThreads(handle(), threads, batchThreads);
    }

    /**
     * Applies exactly these adapters from the next decode on. K/V already cached were computed under the previous
     * adapters: callers decide whether to keep them.
     */
    public void setAdapters(List<AdapterScale> next) {
        long[] hs = new long[next.size()];
        float[] scales = new float[next.size()];
        for (int i = 0; i < hs.length; i++) {
            LoraAdapter a = next.get(i).adapter();
            if (a.model() != model) {
                throw new IllegalArgumentException("adapter was loaded for another model");
            }
            hs[i] = a.handle();
            scales[i] = next.get(i).scale();
        }
        nativeSetAdapters(handle(), hs, scales);
        next.forEach(a -> a.adapter().retain());
        adapters.forEach(a -> a.adapter().release());
        adapters = List.copyOf(next);
    }

    /** The adapters applied now (empty: the base model). */
    public List<AdapterScale> adapters() {
        return adapters;
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        adapters.forEach(a -> a.adapter().release());
        adapters = List.of();
        model.release();
    }

    private static native long nativeCreate(long model, int nCtx, int nBatch, int nUbatch, int nSeqMax, int threads,
                                            int threadsBatch, int flashAttn, boolean f32Kv, boolean kvUnified);

    private static native void nativeFree(long h);

    private static native int[] nativeInfo(long h);

    private static native void nativeSetThreads(long h, int threads, int threadsBatch);

    private static native void nativeDecode(long h, int n, int[] tokens, int[] pos, int[] seq, boolean[] outputs);

    private static native float[] nativeLogits(long h, int idx);

    private static native int nativeTopLogprobs(long h, int idx, int[] ids, float[] logprobs);

    private static native float nativeTokenLogprob(long h, int idx, int token);

    private static native boolean nativeSeqRemove(long h, int seq, int p0, int p1);

    private static native void nativeSeqCopy(long h, int src, int dst, int p0, int p1);

    private static native void nativeSeqKeep(long h, int seq);

    private static native void nativeClear(long h);

    private static native int nativeSeqPosMax(long h, int seq);

    private static native void nativeSetAdapters(long h, long[] adapters, float[] scales);
}
