package dev.steer.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Tiny random-weight GGUF models for tests, written in milliseconds: the llama architecture (with GQA) and a
 * SentencePiece-style vocabulary of ~400 tokens with byte fallback, so any text tokenizes and characters outside the
 * vocabulary (é, €, emoji) split into single-byte tokens. The chat template is ChatML.
 */
public final class TinyModels {
    private TinyModels() {}

    /** Shape of a tiny llama. */
    public record Shape(int embd, int layers, int heads, int kvHeads, int ff, int contextLength) {
        public int headDim() {
            return embd / heads;
        }

        public int kvDim() {
            return headDim() * kvHeads;
        }
    }

    public static final Shape DEFAULT = new Shape(64, 2, 4, 2, 128, 1024);

    public static final String CHATML_TEMPLATE =
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    // token types as llama.cpp defines them (llama_token_type)
    private static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6;

    private static final String[] WORDS = {
        "▁the", "▁a", "▁is", "he", "ll", "llo", "▁hello", "▁world", "or", "ld", "in", "▁in", "er", "on", "an",
        "en", "at", "▁t", "▁w", "▁h", "th", "▁of", "▁and", "ing", "ed", "es", "▁to", "▁it", "▁user", "▁assistant",
        "user", "assistant", "system", "▁steer", "▁model", "▁token",
    };

    /** The vocabulary: control tokens, 256 byte tokens, "▁", printable ASCII, then a few merges. */
    public record Vocab(String[] tokens, float[] scores, int[] types) {}

    public static Vocab vocab() {
        List<String> t = new ArrayList<>();
        List<Float> s = new ArrayList<>();
        List<Integer> ty = new ArrayList<>();
        String[] control = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
        for (int i = 0; i < control.length; i++) {
            t.add(control[i]);
            s.add(0f);
            ty.add(i == 0 ? UNKNOWN : CONTROL);
        }
        for (int b = 0; b < 256; b++) {
            t.add(String.format("<0x%02X>", b));
            s.add(0f);
            ty.add(BYTE);
        }
        t.add("▁");
        s.add(-1000f);
        ty.add(NORMAL);
        for (char c = '!'; c <= '~'; c++) {
            t.add(String.valueOf(c));
            s.add(-1000f);
            ty.add(NORMAL);
        }
        for (int i = 0; i < WORDS.length; i++) {
            t.add(WORDS[i]);
            s.add((float) -i);  // earlier merges win, as in a trained SentencePiece model
            ty.add(NORMAL);
        }
        float[] scores = new float[s.size()];
        int[] types = new int[ty.size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = s.get(i);
            types[i] = ty.get(i);
        }
        return new Vocab(t.toArray(String[]::new), scores, types);
    }

    /** The id of a token of {@link #vocab()} by its text, e.g. "a" or "<|im_end|>". */
    public static int tokenId(String piece) {
        int id = java.util.Arrays.asList(vocab().tokens()).indexOf(piece);
        if (id < 0) {
            throw new IllegalArgumentException("no token " + piece);
        }
        return id;
    }

    public static Path writeLlama(Path file, Shape shape, long seed) {
        return writeDecoder(file, "llama", shape, shape.headDim(), seed);
    }

    /**
     * A tiny model of the llama family: "llama"; "qwen2" (adds q/k/v biases; NEOX rope); "qwen3" (adds per-head q/k
     * RMS norms; its head size {@code headDim} need not be embd/heads).
     */
    public static Path writeDecoder(Path file, String arch, Shape shape, int headDim, long seed) {
        return writeDecoder(file, arch, shape, headDim, seed, GgufWriter.WeightType.F32, false);
    }

    /** The same model with its 2-D weights stored as {@code type} (or, with {@code roundOnly}, F32 holding its values). */
    public static Path writeDecoder(Path file, String arch, Shape shape, int headDim, long seed, GgufWriter.WeightType type, boolean roundOnly) {
        return writeDecoder(file, arch, shape, headDim, seed, type, roundOnly, false);
    }

    /** The same, with {@code tied}: no output.weight, so the output layer reuses token_embd.weight (as SmolLM2's does). */
    public static Path writeDecoder(Path file, String arch, Shape shape, int headDim, long seed, GgufWriter.WeightType type, boolean roundOnly,
                                    boolean tied) {
        Vocab v = vocab();
        int nVocab = v.tokens().length;
        Random rnd = new Random(seed);
        GgufWriter w = new GgufWriter()
                .weights(type, roundOnly)
                .put("general.architecture", arch)
                .put("general.name", "steer-tiny-" + arch)
                .put(arch + ".context_length", shape.contextLength())
                .put(arch + ".embedding_length", shape.embd())
                .put(arch + ".block_count", shape.layers())
                .put(arch + ".feed_forward_length", shape.ff())
                .put(arch + ".attention.head_count", shape.heads())
                .put(arch + ".attention.head_count_kv", shape.kvHeads())
                .put(arch + ".attention.layer_norm_rms_epsilon", 1e-5f)
                .put(arch + ".rope.freq_base", 10000f)
                .put(arch + ".rope.dimension_count", headDim)
                .put("tokenizer.ggml.model", "llama")
                .put("tokenizer.ggml.tokens", v.tokens())
                .put("tokenizer.ggml.scores", v.scores())
                .put("tokenizer.ggml.token_type", v.types())
                .put("tokenizer.ggml.unknown_token_id", 0)
                .put("tokenizer.ggml.bos_token_id", 1)
                .put("tokenizer.ggml.eos_token_id", 2)
                .put("tokenizer.ggml.add_bos_token", true)
                .put("tokenizer.ggml.add_space_prefix", false)
                .put("tokenizer.chat_template", CHATML_TEMPLATE);
        if (headDim != shape.headDim()) {
            w.put(arch + ".attention.key_length", headDim).put(arch + ".attention.value_length", headDim);
        }
        int e = shape.embd();
        int qDim = headDim * shape.heads();
        int kvDim = headDim * shape.kvHeads();
        w.tensor("token_embd.weight", gaussian(rnd, e * nVocab, 0.5f), e, nVocab);
        for (int l = 0; l < shape.layers(); l++) {
            String p = "blk." + l + ".";
            w.tensor(p + "attn_norm.weight", ones(e), e);
            w.tensor(p + "attn_q.weight", gaussian(rnd, e * qDim, 0.15f), e, qDim);
            w.tensor(p + "attn_k.weight", gaussian(rnd, e * kvDim, 0.15f), e, kvDim);
            w.tensor(p + "attn_v.weight", gaussian(rnd, e * kvDim, 0.15f), e, kvDim);
            w.tensor(p + "attn_output.weight", gaussian(rnd, qDim * e, 0.15f), qDim, e);
            if (arch.equals("qwen2")) {
                w.tensor(p + "attn_q.bias", gaussian(rnd, qDim, 0.1f), qDim);
                w.tensor(p + "attn_k.bias", gaussian(rnd, kvDim, 0.1f), kvDim);
                w.tensor(p + "attn_v.bias", gaussian(rnd, kvDim, 0.1f), kvDim);
            }
            if (arch.equals("qwen3")) {
                float[] qn = gaussian(rnd, headDim, 0.1f);
                float[] kn = gaussian(rnd, headDim, 0.1f);
                for (int i = 0; i < headDim; i++) {
                    qn[i] += 1f;
                    kn[i] += 1f;
                }
                w.tensor(p + "attn_q_norm.weight", qn, headDim);
                w.tensor(p + "attn_k_norm.weight", kn, headDim);
            }
            w.tensor(p + "ffn_norm.weight", ones(e), e);
            w.tensor(p + "ffn_gate.weight", gaussian(rnd, e * shape.ff(), 0.15f), e, shape.ff());
            w.tensor(p + "ffn_up.weight", gaussian(rnd, e * shape.ff(), 0.15f), e, shape.ff());
            w.tensor(p + "ffn_down.weight", gaussian(rnd, shape.ff() * e, 0.15f), shape.ff(), e);
        }
        w.tensor("output_norm.weight", ones(e), e);
        // Control tokens (ids 0-4: unk, BOS, EOS and the chat markers) get zero output rows, so their logit is 0 while
        // ordinary tokens spread around it: a random model then rarely ends on its own, and tests see long outputs.
        float[] output = gaussian(rnd, e * nVocab, 0.5f);
        java.util.Arrays.fill(output, 0, 5 * e, 0f);
        if (!tied) {
            w.tensor("output.weight", output, e, nVocab);
        }
        return write(w, file);
    }

    /**
     * A tiny Gemma 3: 6 layers (5 with a sliding window of {@code window} tokens, then a global one, as Gemma's
     * pattern of 6 says), head size 32 for 4 query heads and 1 KV head, q/k norms, post-attention and post-FFN norms,
     * GELU-gated MLP, tied embeddings.
     */
    public static Path writeGemma3(Path file, int window, long seed) {
        Vocab v = vocab();
        int nVocab = v.tokens().length;
        int e = 64, layers = 6, heads = 4, kvHeads = 1, hd = 32, ff = 128;
        Random rnd = new Random(seed);
        GgufWriter w = new GgufWriter()
                .put("general.architecture", "gemma3")
                .put("general.name", "steer-tiny-gemma3")
                .put("gemma3.context_length", 1024)
                .put("gemma3.embedding_length", e)
                .put("gemma3.block_count", layers)
                .put("gemma3.feed_forward_length", ff)
                .put("gemma3.attention.head_count", heads)
                .put("gemma3.attention.head_count_kv", kvHeads)
                .put("gemma3.attention.key_length", hd)
                .put("gemma3.attention.value_length", hd)
                .put("gemma3.attention.layer_norm_rms_epsilon", 1e-6f)
                .put("gemma3.attention.sliding_window", window)
                .put("gemma3.rope.freq_base", 1000000f)
                .put("tokenizer.ggml.model", "llama")
                .put("tokenizer.ggml.tokens", v.tokens())
                .put("tokenizer.ggml.scores", v.scores())
                .put("tokenizer.ggml.token_type", v.types())
                .put("tokenizer.ggml.unknown_token_id", 0)
                .put("tokenizer.ggml.bos_token_id", 1)
                .put("tokenizer.ggml.eos_token_id", 2)
                .put("tokenizer.ggml.add_bos_token", true)
                .put("tokenizer.ggml.add_space_prefix", false);
        float[] embd = gaussian(rnd, e * nVocab, 0.1f);
        java.util.Arrays.fill(embd, 0, 5 * e, 0f);
        w.tensor("token_embd.weight", embd, e, nVocab);
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            w.tensor(p + "attn_norm.weight", near1(rnd, e), e);
            w.tensor(p + "attn_q.weight", gaussian(rnd, e * heads * hd, 0.15f), e, heads * hd);
            w.tensor(p + "attn_k.weight", gaussian(rnd, e * kvHeads * hd, 0.15f), e, kvHeads * hd);
            w.tensor(p + "attn_v.weight", gaussian(rnd, e * kvHeads * hd, 0.15f), e, kvHeads * hd);
            w.tensor(p + "attn_output.weight", gaussian(rnd, heads * hd * e, 0.15f), heads * hd, e);
            w.tensor(p + "attn_q_norm.weight", near1(rnd, hd), hd);
            w.tensor(p + "attn_k_norm.weight", near1(rnd, hd), hd);
            w.tensor(p + "post_attention_norm.weight", near1(rnd, e), e);
            w.tensor(p + "ffn_norm.weight", near1(rnd, e), e);
            w.tensor(p + "ffn_gate.weight", gaussian(rnd, e * ff, 0.15f), e, ff);
            w.tensor(p + "ffn_up.weight", gaussian(rnd, e * ff, 0.15f), e, ff);
            w.tensor(p + "ffn_down.weight", gaussian(rnd, ff * e, 0.15f), ff, e);
            w.tensor(p + "post_ffw_norm.weight", near1(rnd, e), e);
        }
        w.tensor("output_norm.weight", near1(rnd, e), e);
        return write(w, file);
    }

    private static float[] near1(Random rnd, int n) {
        float[] a = gaussian(rnd, n, 0.1f);
        for (int i = 0; i < n; i++) {
            a[i] += 1f;
        }
        return a;
    }

    /**
     * A LoRA adapter for {@link #writeLlama} models on attn_q and ffn_up of every layer, with random (non-zero) A and
     * B so that it visibly changes the logits. Shapes as llama.cpp expects: A = [n_in, r], B = [r, n_out].
     */
    public static Path writeLoraAdapter(Path file, Shape shape, int rank, float alpha, long seed) {
        Random rnd = new Random(seed);
        GgufWriter w = new GgufWriter()
                .put("general.type", "adapter")
                .put("general.architecture", "llama")
                .put("adapter.type", "lora")
                .put("adapter.lora.alpha", alpha);
        int e = shape.embd();
        for (int l = 0; l < shape.layers(); l++) {
            String p = "blk." + l + ".";
            w.tensor(p + "attn_q.weight.lora_a", gaussian(rnd, e * rank, 0.3f), e, rank);
            w.tensor(p + "attn_q.weight.lora_b", gaussian(rnd, rank * e, 0.3f), rank, e);
            w.tensor(p + "ffn_up.weight.lora_a", gaussian(rnd, e * rank, 0.3f), e, rank);
            w.tensor(p + "ffn_up.weight.lora_b", gaussian(rnd, rank * shape.ff(), 0.3f), rank, shape.ff());
        }
        return write(w, file);
    }

    private static Path write(GgufWriter w, Path file) {
        try {
            w.write(file);
            return file;
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    private static float[] gaussian(Random rnd, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian() * std;
        }
        return a;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }
}
