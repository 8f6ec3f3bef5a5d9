package dev.steer.llama;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A GGUF model loaded by llama.cpp: weights (memory-mapped, optionally offloaded to the GPU) and tokenizer.
 * Thread-safe: tokenizing and reading metadata do not change the model. Contexts, samplers and adapters made from
 * it must be closed before it is.
 */
public final class LlamaModel extends NativeHandle {
    /**
     * @param gpuLayers     layers to offload to the GPU (-1: all, 0: none)
     * @param mmap          memory-map the file instead of reading it
     * @param repackWeights let llama.cpp repack weights into CPU-specific layouts (faster CPU matmuls)
     */
    public record Params(int gpuLayers, boolean mmap, boolean repackWeights) {
        public static Params defaults() {
            return new Params(0, true, true);
        }

        public Params withGpuLayers(int n) {
            return new Params(n, mmap, repackWeights);
        }
    }

    private final ModelInfo info;

    private LlamaModel(long handle) {
        super(handle);
        this.info = readInfo(handle);
    }

    public static LlamaModel load(Path path, Params params) {
        NativeLibrary.load();
        if (!Files.isRegularFile(path)) {
            throw new IllegalArgumentException("model file not found: " + path);
        }
        byte[] p = path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8);
        return new LlamaModel(nativeLoad(p, params.gpuLayers(), params.mmap(), params.repackWeights()));
    }

    public ModelInfo info() {
        return info;
    }

    public int vocabSize() {
        return info.vocabSize();
    }

    /**
     * @param addSpecial   add BOS (and EOS) as the model's tokenizer is configured to
     * @param parseSpecial turn special-token text such as {@code <|im_end|>} into those tokens (for rendered
     *                     chat prompts), instead of tokenizing it as plain text (for user-supplied text)
     */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        return nativeTokenize(handle(), text.getBytes(StandardCharsets.UTF_8), addSpecial, parseSpecial);
    }

    /**
     * The bytes one token stands for. They may be part of a UTF-8 character: decode a stream of them with
     * {@link Utf8Stream}, never one by one.
     *
     * @param renderSpecial render control tokens (such as end-of-turn) as their text instead of nothing
     */
    public byte[] tokenBytes(int token, boolean renderSpecial) {
        return nativeTokenPiece(handle(), token, renderSpecial);
    }

    public String detokenize(int[] tokens, boolean removeSpecial, boolean renderSpecial) {
        return new String(nativeDetokenize(handle(), tokens, removeSpecial, renderSpecial), StandardCharsets.UTF_8);
    }

    /** End of generation: EOS, end-of-turn, or any other token the model marks as ending its output. */
    public boolean isEndOfGeneration(int token) {
        return nativeIsEndOfGeneration(handle(), token);
    }

    /**
     * The sum of the tokens' input embeddings (rows of the model's token embedding table, as floats): the cheapest
     * summary of what a prompt is about, from the weights alone (no forward pass). Scopes stored without a layer, and
     * those of adapters on every block, compare prompts by it ({@code dev.steer.adapters.Scope}; the others by
     * {@link LayerProbe}).
     */
    public float[] embeddingSum(int[] tokens) {
        return nativeEmbeddingSum(handle(), tokens);
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
    }

    private static ModelInfo readInfo(long h) {
        int[] s = nativeShape(h);  // order fixed by LlamaModel.cpp
        long[] size = nativeSize(h);
        byte[][] kv = nativeMetadata(h);
        Map<String, String> meta = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            meta.put(new String(kv[i], StandardCharsets.UTF_8), new String(kv[i + 1], StandardCharsets.UTF_8));
        }
        byte[] tmpl = nativeChatTemplate(h);
        return new ModelInfo(
                meta.getOrDefault("general.architecture", "unknown"),
                new String(nativeDescription(h), StandardCharsets.UTF_8),
                s[0], s[1], s[2], s[3], s[4], s[5], s[10], s[6], s[7], s[8], s[9] != 0,
                size[0], size[1],
                tmpl == null ? null : new String(tmpl, StandardCharsets.UTF_8),
                Map.copyOf(meta));
    }

    private static native long nativeLoad(byte[] path, int gpuLayers, boolean mmap, boolean extraBufts);

    private static native void nativeFree(long h);

    private static native int[] nativeShape(long h);

    private static native long[] nativeSize(long h);

    private static native byte[] nativeDescription(long h);

    private static native byte[][] nativeMetadata(long h);

    private static native byte[] nativeChatTemplate(long h);

    private static native int[] nativeTokenize(long h, byte[] text, boolean addSpecial, boolean parseSpecial);

    private static native byte[] nativeTokenPiece(long h, int token, boolean special);

    private static native byte[] nativeDetokenize(long h, int[] tokens, boolean removeSpecial, boolean unparseSpecial);

    private static native boolean nativeIsEndOfGeneration(long h, int token);

    private static native float[] nativeEmbeddingSum(long h, int[] tokens);
}
