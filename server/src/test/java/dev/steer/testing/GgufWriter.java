package dev.steer.testing;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3 files (the format llama.cpp loads): metadata key/values, then F32 tensors. Enough for test models
 * and test adapters; see ggml's docs/gguf.md for the layout.
 */
public final class GgufWriter {
    private static final int ALIGNMENT = 32;
    // GGUF metadata value types
    private static final int UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9;
    private static final int GGML_TYPE_F32 = 0;

    private record Tensor(String name, long[] shape, float[] data) {}

    private final Map<String, Object> kv = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();

    public GgufWriter put(String key, Object value) {
        kv.put(key, value);
        return this;
    }

    /** A tensor with ggml's dimension order: shape[0] is the contiguous (row) dimension. */
    public GgufWriter tensor(String name, float[] data, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException(name + ": shape has " + n + " elements, data " + data.length);
        }
        tensors.add(new Tensor(name, shape, data));
        return this;
    }

    public Path write(Path path) throws IOException {
        Files.createDirectories(path.toAbsolutePath().getParent());
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 16)) {
            Sink s = new Sink(out);
            s.u32(0x46554747);  // "GGUF"
            s.u32(3);
            s.u64(tensors.size());
            s.u64(kv.size());
            for (var e : kv.entrySet()) {
                s.string(e.getKey());
                s.value(e.getValue());
            }
            long offset = 0;
            for (Tensor t : tensors) {
                s.string(t.name());
                s.u32(t.shape().length);
                for (long d : t.shape()) {
                    s.u64(d);
                }
                s.u32(GGML_TYPE_F32);
                s.u64(offset);
                offset = align(offset + 4L * t.data().length);
            }
            s.pad();
            for (Tensor t : tensors) {
                ByteBuffer b = ByteBuffer.allocate(4 * t.data().length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(t.data());
                s.bytes(b.array());
                s.pad();
            }
        }
        return path;
    }

    private static long align(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Little-endian primitive writer that tracks its position for alignment padding. */
    private static final class Sink {
        private final OutputStream out;
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        private long position;

        Sink(OutputStream out) {
            this.out = out;
        }

        void bytes(byte[] b) throws IOException {
            out.write(b);
            position += b.length;
        }

        void u32(long v) throws IOException {
            scratch.clear().putInt((int) v);
            bytes(slice(4));
        }

        void u64(long v) throws IOException {
            scratch.clear().putLong(v);
            bytes(slice(8));
        }

        void f32(float v) throws IOException {
            scratch.clear().putFloat(v);
            bytes(slice(4));
        }

        private byte[] slice(int n) {
            byte[] b = new byte[n];
            System.arraycopy(scratch.array(), 0, b, 0, n);
            return b;
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        void pad() throws IOException {
            while (position % ALIGNMENT != 0) {
                bytes(new byte[] {0});
            }
        }

        void value(Object v) throws IOException {
            switch (v) {
                case String s -> { u32(STRING); string(s); }
                case Boolean b -> { u32(BOOL); bytes(new byte[] {(byte) (b ? 1 : 0)}); }
                case Integer i -> { u32(UINT32); u32(i); }
                case Float f -> { u32(FLOAT32); f32(f); }
                case String[] a -> {
                    u32(ARRAY); u32(STRING); u64(a.length);
                    for (String s : a) string(s);
                }
                case float[] a -> {
                    u32(ARRAY); u32(FLOAT32); u64(a.length);
                    for (float f : a) f32(f);
                }
                case int[] a -> {
                    u32(ARRAY); u32(INT32); u64(a.length);
                    for (int i : a) u32(i);
                }
                default -> throw new IllegalArgumentException("unsupported GGUF value " + v.getClass());
            }
        }
    }
}
