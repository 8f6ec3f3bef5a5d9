package dev.steer.engine;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.NativeLibrary;
import dev.steer.testing.GgufWriter;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * For scripts/gpu/gpu-check.sh (compiled by scripts/gpu/prepare.sh with the test classes; not in the Maven build). {@code probe}: prints what libsteer was built with and whether it
 * offloads. {@code bench}: greedy decode throughput through the Engine on a random-weight llama of SmolLM2-135M's
 * shape (576 embd, 30 layers, 9 heads / 3 KV heads, FFN 1536, Q4_1 weights) but with TinyModels' ~400-token vocabulary
 * (SmolLM2 has 49152, so its output matmul is left out here), all layers on the GPU as STEER_TEST_GPU_LAYERS says.
 */
public final class GpuDecodeBench {
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("probe")) {
            System.out.println("systemInfo: " + NativeLibrary.systemInfo());
            System.out.println("supportsGpuOffload: " + NativeLibrary.supportsGpuOffload());
            return;
        }
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int[] parallels = {1, 8, 32};
        if (args.length > 2) {
            String[] p = args[2].split(",");
            parallels = new int[p.length];
            for (int i = 0; i < p.length; i++) {
                parallels[i] = Integer.parseInt(p[i].trim());
            }
        }
        long t0 = System.nanoTime();
        Path file = Files.createTempDirectory("steer-bench").resolve("smollm2-shape-q4_1.gguf");
        TinyModels.Shape shape = new TinyModels.Shape(576, 30, 9, 3, 1536, 8192);
        TinyModels.writeDecoder(file, "llama", shape, 64, 7, GgufWriter.WeightType.Q4_1, false);
        System.out.printf(Locale.ROOT, "bench: wrote %s (%.1f MB) in %.1f s%n", file.getFileName(), Files.size(file) / 1e6,
                (System.nanoTime() - t0) / 1e9);
        LlamaModel.Params params = TestModels.params();
        int threads = Math.max(1, Math.min(8, Runtime.getRuntime().availableProcessors()));
        try (LlamaModel model = LlamaModel.load(file, params)) {
            System.out.println("bench: gpuLayers=" + params.gpuLayers() + " threads=" + threads + " vocab=" + model.vocabSize());
            int[] prompt = model.tokenize("hello world, the model is in the steer", true, false);
            for (int parallel : parallels) {
                try (Engine engine = new Engine(model, new Engine.Config(parallel, parallel * 512, 512, threads, 4 * parallel))) {
                    run(engine, prompt, 1, 16);  // warm-up: graphs, kernels, allocations
                    for (int rep = 0; rep < 2; rep++) {
                        long start = System.nanoTime();
                        int done = run(engine, prompt, parallel, tokens);
                        double s = (System.nanoTime() - start) / 1e9;
                        System.out.printf(Locale.ROOT,
                                "bench: parallel=%d tokens/stream=%d rep=%d: %d tokens in %.3f s = %.1f tok/s aggregate, %.1f tok/s per stream%n",
                                parallel, tokens, rep, done, s, done / s, done / s / parallel);
                    }
                }
            }
        }
    }

    private static int run(Engine engine, int[] prompt, int n, int tokens) throws Exception {
        List<Collector> cs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Collector c = new Collector();
            engine.submit(GenerationRequest.greedy(prompt, tokens), c);
            cs.add(c);
        }
        int total = 0;
        for (Collector c : cs) {
            total += c.await(300).usage().completionTokens();
        }
        return total;
    }
}
