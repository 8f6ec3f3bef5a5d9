package dev.steer.train;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The base model's greedy answers to the built-in prompts (replay, watch, probes: {@link ReplayPrompts}), generated
 * once per server and kept. On the CPU backend they depend only on the model, the prompt's tokens and the length
 * (greedy decoding through batch-invariant kernels gives a prompt the same answer whatever else the engine runs; a GPU
 * backend is not batch-invariant, docs/gpu.md, and there a kept answer is one of the answers the base may give), so
 * every job after the first skips them: about 7 s of a SmolLM2-135M job on 2 cores (docs/training.md, "Measured").
 */
final class BaseAnswers {
    private record Key(String base, List<Integer> prompt, int maxTokens) {}

    /** How the answers are generated: {@link Greedy#answers(String, List, int)}. */
    interface Generator {
        List<int[]> answers(String model, List<int[]> prompts, int maxTokens);
    }

    private final Generator generator;
    private final Map<Key, int[]> kept = new ConcurrentHashMap<>();

    BaseAnswers(Generator generator) {
        this.generator = generator;
    }

    /**
     * Each prompt's greedy answer of at most {@code maxTokens} by {@code base}, the base model's name on the engine
     * with no adapter ({@code AdapterVersion.pinnedName(model, null)}), in the prompts' order; those not kept yet are
     * generated now, each once (an answer that failed is not kept: the exception reaches the job).
     */
    List<int[]> answers(String base, List<int[]> prompts, int maxTokens) {
        List<Key> keys = prompts.stream().map(p -> new Key(base, Arrays.stream(p).boxed().toList(), maxTokens)).toList();
        Map<Key, int[]> missing = new LinkedHashMap<>();
        for (int i = 0; i < prompts.size(); i++) {
            if (!kept.containsKey(keys.get(i))) {
                missing.putIfAbsent(keys.get(i), prompts.get(i));
            }
        }
        if (!missing.isEmpty()) {
            List<int[]> generated = generator.answers(base, List.copyOf(missing.values()), maxTokens);
            int i = 0;
            for (Key k : missing.keySet()) {
                kept.put(k, generated.get(i++));
            }
        }
        return keys.stream().map(k -> kept.get(k).clone()).toList();
    }
}
