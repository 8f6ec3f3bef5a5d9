package dev.steer.llama;

import java.nio.IntBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The hidden state that enters one transformer block, averaged over a short token sequence: llama.cpp's own forward
 * pass, stopped after the block below (nothing above it, no LM head). An adapter trained on the last blocks reads
 * exactly this input, so routing can compare prompts by it ({@code dev.steer.adapters.Scope}).
 *
 * <p>One call at a time (its own small llama_context, {@code maxTokens} long), behind a lock a virtual thread waits
 * on without holding its carrier (a monitor would pin it: HTTP handlers run on virtual threads, and on 2 cores two
 * pinned carriers stop every other handler). The latest {@link #CACHED} results are
 * kept: a scope's prompts are read when a job's gate routes by them and again when the adapter is activated, and a
 * client often sends the same prompt again.
 */
public final class LayerProbe extends NativeHandle {
    private final LlamaModel model;
    private final ReentrantLock lock = new ReentrantLock();
    /** How many sequences' results are kept. */
    public static final int CACHED = 1024;
    private final Map<IntBuffer, float[]> cache = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<IntBuffer, float[]> eldest) {
            return size() > CACHED;
        }
    };

    private LayerProbe(LlamaModel model, long handle) {
        super(handle);
        this.model = model;
        model.retain();
    }

    /** A probe of the input of block {@code layer} (1 .. the model's blocks - 1). */
    public static LayerProbe create(LlamaModel model, int layer, int maxTokens, int threads) {
        return new LayerProbe(model, nativeCreate(model.handle(), layer, maxTokens, threads));
    }

    /** The mean over {@code tokens} (1 .. maxTokens of them, read alone from position 0) of the block's input. */
    public float[] meanInput(int[] tokens) {
        IntBuffer key = IntBuffer.wrap(tokens.clone());
        lock.lock();
        try {
            float[] mean = cache.get(key);
            if (mean == null) {
                mean = nativeMeanInput(handle(), tokens);
                cache.put(key, mean);
            }
            return mean.clone();
        } finally {
            lock.unlock();
        }
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        model.release();
    }

    private static native long nativeCreate(long model, int layer, int maxTokens, int threads);

    private static native void nativeFree(long handle);

    private static native float[] nativeMeanInput(long handle, int[] tokens);
}
