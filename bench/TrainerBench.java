import dev.steer.llama.Batch;
import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.llama.NativeLibrary;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Training throughput and peak memory of Steer's LoRA trainer, the half of {@code trainer_bench.py} that runs in
 * the JVM. A single-file program over the packaged jar:
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp server/target/steer-server.jar bench/TrainerBench.java \
 *     MODEL SEQ_LEN SPAN BATCH STEPS RANK THREADS GPU_LAYERS METHOD [TRAIN_THREADS [CHECKPOINTING [LAYERS]]]</pre>
 *
 * First the serving footprint: the model and a serving context shaped like the server's default (8192 tokens, 4
 * sequences), after one decode so that the mmap'd weights are resident. Then a trainer over the same weights runs
 * STEPS AdamW steps (after one warm-up step) on BATCH random examples of SEQ_LEN tokens whose last SPAN tokens carry
 * the loss (METHOD sft) or also a rejected span of SPAN tokens for the preference term (METHOD sft+dpo). Prints
 * one JSON object: tokens/s over the timed steps, resident memory of serving alone and the process peak. Last,
 * serving beside training: the latency of single-token decode steps on the serving context (THREADS threads), alone
 * and while the trainer (TRAIN_THREADS threads, default THREADS) runs steps on another thread of the same process.
 * CHECKPOINTING (false, the default; true: every block; N: in N runs of blocks) sets the trainer's activation
 * checkpointing. RECOMPUTE (none, elementwise (the default), attention, or attention:N for the attention of the lowest N
 * adapted blocks only), each with "+16" to keep the largest activations in 16 bits, sets LoraTrainer.recompute
 * (recomputeAttention, keepActivationsIn16Bits). LAYERS (default 0:
 * every block) puts LoRA on the last LAYERS blocks only, as a job's {@code lora_layers}; the blocks below are then
 * computed once per example, by its reference pass, and every step starts from their kept output, as in a job.
 */
public class TrainerBench {
    public static void main(String[] args) throws Exception {
        Path modelPath = Path.of(args[0]);
        int seqLen = Integer.parseInt(args[1]), span = Integer.parseInt(args[2]), batchSize = Integer.parseInt(args[3]);
        int steps = Integer.parseInt(args[4]), rank = Integer.parseInt(args[5]), threads = Integer.parseInt(args[6]);
        int gpuLayers = Integer.parseInt(args[7]);
        boolean dpo = args[8].equals("sft+dpo");
        int trainThreads = args.length > 9 ? Integer.parseInt(args[9]) : threads;
        String checkpointing = args.length > 10 ? args[10] : "false";  // false, true (every block) or N runs of blocks
        int layers = args.length > 11 ? Integer.parseInt(args[11]) : LoraTrainer.ALL_LAYERS;
        String recomputeArg = args.length > 12 ? args[12] : "elementwise";
        boolean kept16 = recomputeArg.endsWith("+16");  // e.g. elementwise+16: activations kept in 16 bits too
        recomputeArg = recomputeArg.replace("+16", "");
        int attentionBlocks = recomputeArg.startsWith("attention:") ? Integer.parseInt(recomputeArg.substring("attention:".length())) : -1;
        LoraTrainer.Recompute recompute = attentionBlocks >= 0 ? LoraTrainer.Recompute.ATTENTION
                : LoraTrainer.Recompute.valueOf(recomputeArg.toUpperCase(java.util.Locale.ROOT));
        NativeLibrary.load();
        try (LlamaModel model = LlamaModel.load(modelPath, new LlamaModel.Params(gpuLayers, true, false));
             LlamaContext serving = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(8192)
                     .withSequences(4).withThreads(threads).withUnifiedKvCache(false))) {
            Random random = new Random(1);
            int vocab = model.vocabSize();
            // Serving footprint: weights paged in by a decode, KV cache and compute buffers allocated.
            Batch b = serving.newBatch();
            for (int i = 0; i < 64; i++) {
                b.add(1000 + random.nextInt(vocab - 2000), i, 0, i == 63);
            }
            serving.decode(b);
            long servingRss = status("VmRSS");

            List<LoraTrainer.Example> batch = new ArrayList<>();
            for (int i = 0; i < batchSize; i++) {
                batch.add(new LoraTrainer.Example(tokens(random, vocab, seqLen - span), tokens(random, vocab, span),
                        dpo ? tokens(random, vocab, span) : new int[0]));
            }
            LoraTrainer.Weights w = dpo ? new LoraTrainer.Weights(1f, 1f, 0.1f) : LoraTrainer.Weights.sftOnly();
            try (LoraTrainer trainer = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, rank, 2f * rank, layers, 1, trainThreads)) {
                switch (checkpointing) {
                    case "false" -> trainer.checkpointing(false);
                    case "true" -> trainer.checkpointing(true);
                    default -> trainer.checkpointing(Integer.parseInt(checkpointing));
                }
                if (attentionBlocks >= 0) {
                    trainer.recomputeAttention(attentionBlocks);
                } else {
                    trainer.recompute(recompute);
                }
                trainer.keepActivationsIn16Bits(kept16);
                // Reference log-probs (adapter off) are computed once per example, as a job does before its steps.
                long t0 = System.nanoTime();
                List<LoraTrainer.Reference> refs = batch.stream().map(trainer::reference).toList();
                double referenceSeconds = (System.nanoTime() - t0) / 1e9;
                float first = trainer.step(batch, refs, w, 1e-4f, 0f);  // warm-up: graph allocation, first touches
                long start = System.nanoTime();
                float last = first;
                for (int s = 0; s < steps; s++) {
                    last = trainer.step(batch, refs, w, 1e-4f, 0f);
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                long peak = status("VmHWM");

                // Serving beside training: decode latency alone, then while a training step runs.
                double[] idle = decodeMillis(serving, 64, 32, random, vocab);
                java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
                java.util.concurrent.CountDownLatch stepping = new java.util.concurrent.CountDownLatch(1);
                Thread training = new Thread(() -> {
                    while (!stop.get()) {
                        stepping.countDown();
                        trainer.step(batch, refs, w, 1e-4f, 0f);
                    }
                });
                training.start();
                stepping.await();
                Thread.sleep(500);  // into the step's forward pass
                double[] busy = decodeMillis(serving, 96, 32, random, vocab);
                stop.set(true);
                training.join();
                long tokensPerStep = (long) batchSize * (seqLen + (dpo ? span : 0));
                System.out.printf("{\"engine\": \"steer\", \"method\": \"%s\", \"checkpointing\": %s, \"recompute\": \"%s\", \"attention_blocks\": %d, \"kept_in_16_bits\": %b, \"layers\": %d, \"seq_len\": %d, \"span\": %d, \"batch\": %d, "
                                + "\"steps\": %d, \"rank\": %d, \"threads\": %d, \"gpu_layers\": %d, \"seconds_per_step\": %.3f, "
                                + "\"tokens_per_second\": %.2f, \"reference_seconds\": %.3f, \"loss_first\": %.4f, \"loss_last\": %.4f, "
                                + "\"serving_rss_mib\": %.1f, \"peak_rss_mib\": %.1f, \"compute_buffer_mib\": %.1f, \"train_threads\": %d, "
                                + "\"decode_ms_alone_p50\": %.1f, \"decode_ms_alone_max\": %.1f, "
                                + "\"decode_ms_while_training_p50\": %.1f, \"decode_ms_while_training_max\": %.1f}%n",
                        args[8], checkpointing, recompute, attentionBlocks, kept16, layers, seqLen, span, batchSize, steps, rank, threads, gpuLayers, seconds / steps,
                        tokensPerStep * steps / seconds, referenceSeconds, first, last,
                        servingRss / 1024.0, peak / 1024.0, trainer.computeBufferBytes() / 1048576.0, trainThreads,
                        percentile(idle, 0.5), percentile(idle, 1.0), percentile(busy, 0.5), percentile(busy, 1.0));
            }
        }
    }

    /** Milliseconds of each of n single-token decode steps of sequence 0, from position pos on. */
    private static double[] decodeMillis(LlamaContext ctx, int pos, int n, Random random, int vocab) {
        Batch b = ctx.newBatch();
        double[] ms = new double[n];
        for (int i = 0; i < n; i++) {
            b.clear();
            b.add(1000 + random.nextInt(vocab - 2000), pos + i, 0, true);
            long t = System.nanoTime();
            ctx.decode(b);
            ms[i] = (System.nanoTime() - t) / 1e6;
        }
        return ms;
    }

    private static double percentile(double[] values, double q) {
        double[] v = values.clone();
        java.util.Arrays.sort(v);
        return v[(int) Math.min(v.length - 1, Math.round(q * (v.length - 1)))];
    }

    private static int[] tokens(Random random, int vocab, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 1000 + random.nextInt(vocab - 2000);  // clear of the special tokens at the start of the vocabulary
        }
        return t;
    }

    /** A /proc/self/status field in KiB (VmRSS: resident now, VmHWM: the process's peak). */
    private static long status(String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no " + field + " in /proc/self/status");
    }
}
