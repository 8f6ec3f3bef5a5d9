package dev.steer.llama;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A GGUF LoRA adapter (general.type=adapter, adapter.type=lora) loaded for one model at run time. It changes nothing
 * until a context applies it ({@link LlamaContext#setAdapters}); it cannot be closed while a context uses it.
 */
public final class LoraAdapter extends NativeHandle {
    private final LlamaModel model;
    private final Path path;

    private LoraAdapter(LlamaModel model, Path path, long handle) {
        super(handle);
        this.model = model;
        this.path = path;
        model.retain();
    }

    public static LoraAdapter load(LlamaModel model, Path path) {
        if (!Files.isRegularFile(path)) {
            throw new IllegalArgumentException("adapter file not found: " + path);
        }
        byte[] p = path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8);
        return new LoraAdapter(model, path, nativeLoad(model.handle(), p));
    }

    public LlamaModel model() {
        return model;
    }

    public Path path() {
        return path;
    }

    /** A metadata value of the adapter's GGUF (e.g. "adapter.lora.alpha"), or null. */
    public String metadata(String key) {
        byte[] v = nativeMeta(handle(), key.getBytes(StandardCharsets.UTF_8));
        return v == null ? null : new String(v, StandardCharsets.UTF_8);
    }

    @Override
    protected void free(long handle) {
        nativeFree(handle);
        model.release();
    }

    private static native long nativeLoad(long model, byte[] path);

    private static native void nativeFree(long h);

    private static native byte[] nativeMeta(long h, byte[] key);
}
