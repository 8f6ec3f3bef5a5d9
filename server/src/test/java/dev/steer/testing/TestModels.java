package dev.steer.testing;

import dev.steer.llama.LlamaModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Models shared by the tests of one JVM: the tiny llama (written once) and, when fetched, Gemma 3 270M. */
public final class TestModels {
    private static Path dir;
    private static LlamaModel tiny;

    private TestModels() {}

    public static synchronized Path dir() {
        if (dir == null) {
            try {
                dir = Files.createTempDirectory("steer-test-models");
                dir.toFile().deleteOnExit();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return dir;
    }

    public static synchronized Path tinyLlamaPath() {
        Path p = dir().resolve("tiny-llama.gguf");
        if (!Files.exists(p)) {
            TinyModels.writeLlama(p, TinyModels.DEFAULT, 42);
            p.toFile().deleteOnExit();
        }
        return p;
    }

    /** One loaded tiny llama for the whole test run (tests must not close it). */
    public static synchronized LlamaModel tinyLlama() {
        if (tiny == null) {
            tiny = LlamaModel.load(tinyLlamaPath(), params());
        }
        return tiny;
    }

    /**
     * How tests load models: on the CPU, unless STEER_TEST_GPU_LAYERS asks for offloading (-1: every layer), which
     * is how the same engine tests run on a GPU machine.
     */
    public static LlamaModel.Params params() {
        String n = System.getenv("STEER_TEST_GPU_LAYERS");
        return LlamaModel.Params.defaults().withGpuLayers(n == null || n.isBlank() ? 0 : Integer.parseInt(n.trim()));
    }

    /** Whether the engine tests run with layers offloaded to a GPU (STEER_TEST_GPU_LAYERS, docs/gpu.md). */
    public static boolean onGpu() {
        return params().gpuLayers() != 0;
    }

    /**
     * For tests of a CPU-only guarantee: two computations that must agree to the last bit or within a CPU's rounding
     * whatever the batch or graph shape (serving's batch invariance, the trainer's forward == llama_decode, a saved
     * adapter serving as it trained, finite-difference gradient checks at steps of 1e-3). CUDA picks its kernels by
     * batch size and quantizes activations differently per kernel, so on a GPU they agree only to ~0.02 in the logits
     * (measured on an H200: docs/gpu.md); these tests are skipped there, saying why, and run everywhere else (CI).
     */
    public static void assumeCpuExactness() {
        org.junit.jupiter.api.Assumptions.assumeFalse(onGpu(),
                "exact across batch and graph shapes on the CPU only: CUDA picks kernels by batch size (docs/gpu.md)");
    }

    /**
     * The Gemma 3 270M GGUF that models/fetch-gemma3-270m.sh assembled, from -Dsteer.test.gemma or STEER_TEST_GEMMA;
     * null when neither names an existing file.
     */
    public static Path gemmaOrNull() {
        return realModel("steer.test.gemma", "STEER_TEST_GEMMA");
    }

    /** SmolLM2-135M-Instruct Q4_1 (models/fetch-smollm2.sh), the default real model, or null when not fetched. */
    public static Path smolLm2OrNull() {
        return realModel("steer.test.smollm2", "STEER_TEST_SMOLLM2");
    }

    private static Path realModel(String property, String env) {
        String p = System.getProperty(property);
        if (p == null || p.isBlank() || p.startsWith("${")) {
            p = System.getenv(env);
        }
        return p != null && !p.isBlank() && Files.isRegularFile(Path.of(p)) ? Path.of(p) : null;
    }

    /** Writes the tiny llama to {@code args[0]}, for the bench scripts (bench/fuzz.sh, bench/soak.py). */
    public static void main(String[] args) throws IOException {
        Files.copy(tinyLlamaPath(), Path.of(args[0]), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
}
