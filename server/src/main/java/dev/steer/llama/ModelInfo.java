package dev.steer.llama;

import java.util.Map;

/**
 * What a loaded model is: its architecture and shape, its special tokens, its chat template, and all GGUF metadata.
 *
 * @param chatTemplate the Jinja template stored in the GGUF, or null when it has none
 * @param eot          end-of-turn token, -1 when the vocabulary has none
 * @param slidingWindow attention window of sliding-window layers, 0 when the model has none
 */
public record ModelInfo(
        String architecture,
        String description,
        int vocabSize,
        int trainedContextLength,
        int embeddingSize,
        int layers,
        int heads,
        int kvHeads,
        int slidingWindow,
        int bos,
        int eos,
        int eot,
        boolean addsBos,
        long sizeBytes,
        long parameterCount,
        String chatTemplate,
        Map<String, String> metadata) {}
