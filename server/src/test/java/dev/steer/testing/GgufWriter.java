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
 * Writes GGUF v3 files (the format llama.cpp loads): metadata key/values, then tensors in F32, or their 2-D
 * weights in F16, BF16 or Q8_0 (see {@link #weights}). Enough for test models and test adapters; see ggml's
 * docs/gguf.md for the layout.
 */
public final class GgufWriter {
    private static final int ALIGNMENT = 32;
    // GGUF metadata value types
    private static final int UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9;

    /** How 2-D weight tensors are stored: ggml's type id, and bytes per block of {@code blockSize} values. */
    public enum WeightType {
        F32(0, 1, 4), F16(1, 1, 2), BF16(30, 1, 2), Q8_0(8, 32, 34), Q4_1(3, 32, 20), Q4_0(2, 32, 18);

        final int ggmlType, blockSize, blockBytes;

        WeightType(int ggmlType, int blockSize, int blockBytes) {
            this.ggmlType = ggmlType;
            this.blockSize = blockSize;
            this.blockBytes = blockBytes;
        }

        byte[] encode(float[] x) {
            ByteBuffer b = ByteBuffer.allocate(x.length / blockSize * blockBytes).order(ByteOrder.LITTLE_ENDIAN);
            switch (this) {
                case F32 -> b.asFloatBuffer().put(x);
                case F16 -> { for (float v : x) b.putShort(Float.floatToFloat16(v)); }
                case BF16 -> { for (float v : x) b.putShort(toBf16(v)); }
                case Q8_0 -> {
                    // ggml's quantize_row_q8_0_ref: a scale d = max|x| / 127 per block of 32 (stored as F16), then
                    // each value as round(x / d) in a signed byte
                    for (int i = 0; i < x.length; i += 32) {
                        float amax = 0;
                        for (int j = 0; j < 32; j++) {
                            amax = Math.max(amax, Math.abs(x[i + j]));
                        }
                        float d = amax / 127f;
                        float id = d != 0 ? 1f / d : 0f;
                        b.putShort(Float.floatToFloat16(d));
                        for (int j = 0; j < 32; j++) {
                            b.put((byte) Math.round(x[i + j] * id));
                        }
                    }
                }
                case Q4_0 -> {
                    // ggml's quantize_row_q4_0_ref: per block of 32 the value of largest magnitude m and d = m / -8
                    // (F16), then each value as min(15, (int8) (x / d + 8.5)) in a nibble: value j in the low nibble
                    // of byte j, value j + 16 in its high nibble
                    for (int i = 0; i < x.length; i += 32) {
                        float amax = 0, max = 0;
                        for (int j = 0; j < 32; j++) {
                            if (Math.abs(x[i + j]) > amax) {
                                amax = Math.abs(x[i + j]);
                                max = x[i + j];
                            }
                        }
                        float d = max / -8f;
                        float id = d != 0 ? 1f / d : 0f;
                        b.putShort(Float.floatToFloat16(d));
                        for (int j = 0; j < 16; j++) {
                            int lo = Math.min(15, (byte) (x[i + j] * id + 8.5f));
                            int hi = Math.min(15, (byte) (x[i + j + 16] * id + 8.5f));
                            b.put((byte) (lo | (hi << 4)));
                        }
                    }
                }
                case Q4_1 -> {
                    // ggml's quantize_row_q4_1_ref: per block of 32 the minimum m and a scale d = (max - m) / 15
                    // (both F16), then each value as min(15, (int) ((x - m) / d + 0.5)) in a nibble: value j in the
                    // low nibble of byte j, value j + 16 in its high nibble
                    for (int i = 0; i < x.length; i += 32) {
                        float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
                        for (int j = 0; j < 32; j++) {
                            min = Math.min(min, x[i + j]);
                            max = Math.max(max, x[i + j]);
                        }
                        float d = (max - min) / 15f;
                        float id = d != 0 ? 1f / d : 0f;
                        b.putShort(Float.floatToFloat16(d));
                        b.putShort(Float.floatToFloat16(min));
                        for (int j = 0; j < 16; j++) {
                            int lo = Math.min(15, (int) ((x[i + j] - min) * id + 0.5f));
                            int hi = Math.min(15, (int) ((x[i + j + 16] - min) * id + 0.5f));
                            b.put((byte) (lo | (hi << 4)));
                        }
                    }
                }
            }
            return b.array();
        }

        /** The values a model stored in this type holds: what ggml dequantizes {@link #encode}'s bytes to. */
        public float[] roundTrip(float[] x) {
            ByteBuffer b = ByteBuffer.wrap(encode(x)).order(ByteOrder.LITTLE_ENDIAN);
            float[] y = new float[x.length];
            switch (this) {
                case F32 -> b.asFloatBuffer().get(y);
                case F16 -> { for (int i = 0; i < y.length; i++) y[i] = Float.float16ToFloat(b.getShort()); }
                case BF16 -> { for (int i = 0; i < y.length; i++) y[i] = Float.intBitsToFloat((b.getShort() & 0xffff) << 16); }
                case Q8_0 -> {
                    for (int i = 0; i < y.length; i += 32) {
                        float d = Float.float16ToFloat(b.getShort());
                        for (int j = 0; j < 32; j++) {
                            y[i + j] = b.get() * d;
                        }
                    }
                }
                case Q4_0 -> {
                    for (int i = 0; i < y.length; i += 32) {
                        float d = Float.float16ToFloat(b.getShort());
                        for (int j = 0; j < 16; j++) {
                            int q = b.get() & 0xff;
                            y[i + j] = ((q & 0xf) - 8) * d;
                            y[i + j + 16] = ((q >> 4) - 8) * d;
                        }
                    }
                }
                case Q4_1 -> {
                    for (int i = 0; i < y.length; i += 32) {
                        float d = Float.float16ToFloat(b.getShort()), m = Float.float16ToFloat(b.getShort());
                        for (int j = 0; j < 16; j++) {
                            int q = b.get() & 0xff;
                            y[i + j] = (q & 0xf) * d + m;
                            y[i + j + 16] = (q >> 4) * d + m;
                        }
                    }
                }
            }
            return y;
        }

        private static short toBf16(float v) {
            int bits = Float.floatToRawIntBits(v);
            return (short) ((bits + 0x7fff + ((bits >> 16) & 1)) >>> 16);  // round to nearest even
        }
    }

    private record Tensor(String name, long[] shape, float[] data, WeightType type) {}

    private final Map<String, Object> kv = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private WeightType weightType = WeightType.F32;
    private boolean roundOnly;

    /**
     * Stores the 2-D {@code *.weight} tensors added after this call in {@code type} (rows must hold whole blocks);
     * with {@code roundOnly}, stores them in F32 but holding exactly the values {@code type} would (a reference
     * model for comparisons).
     */
    public GgufWriter weights(WeightType type, boolean roundOnly) {
        this.weightType = type;
        this.roundOnly = roundOnly;
        return this;
    }

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
        boolean weight = name.endsWith(".weight") && shape.length == 2 && shape[0] % weightType.blockSize == 0;
        if (!weight || weightType == WeightType.F32) {
            tensors.add(new Tensor(name, shape, data, WeightType.F32));
        } else if (roundOnly) {
            tensors.add(new Tensor(name, shape, weightType.roundTrip(data), WeightType.F32));
        } else {
            tensors.add(new Tensor(name, shape, data, weightType));
        }
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
                s.u32(t.type().ggmlType);
                s.u64(offset);
                offset = align(offset + (long) t.data().length / t.type().blockSize * t.type().blockBytes);
            }
            s.pad();
            for (Tensor t : tensors) {
                s.bytes(t.type().encode(t.data()));
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
