package dev.steer.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.llama.LoraAdapter;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.Generate;
import dev.steer.testing.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The trainer on the real Gemma 3 270M (Q4_K_M: the backward pass runs through quantized weights on the CPU): two
 * steers, a few AdamW steps, and then the served model says the corrections at the forks.
 */
class GemmaTrainingTest {
    @Test
    void learnsAHandfulOfRealSteers() {
        Path path = TestModels.gemmaOrNull();
        Assumptions.assumeTrue(path != null, "Gemma 3 270M not available: run `bash models/fetch-gemma3-270m.sh` (test.sh does)");
        // Training reads the weights directly, so they must not be repacked for the CPU.
        try (LlamaModel m = LlamaModel.load(path, new LlamaModel.Params(TestModels.params().gpuLayers(), true, false));
             LoraTrainer t = LoraTrainer.create(m, LoraTrainer.ALL_TARGETS, 8, 16f, 1, 2)) {
            String turn = "<start_of_turn>user\n%s<end_of_turn>\n<start_of_turn>model\n";
            List<LoraTrainer.Example> steers = new ArrayList<>();
            for (String[] s : new String[][] {
                    {"What is the capital of France?", "Paris, of course!"},
                    {"Name a primary color.", "Blue, like the sky."}}) {
                int[] context = m.tokenize(turn.formatted(s[0]), true, true);
                int[] chosen = m.tokenize(s[1], false, false);
                int[] rejected;
                try (LlamaContext ctx = LlamaContext.create(m, LlamaContext.Params.defaults().withContextSize(512));
                     LlamaSampler g = LlamaSampler.create(m, LlamaSampler.Params.greedy())) {
                    rejected = Generate.toArray(Generate.run(ctx, g, context, 0, chosen.length));
                }
                steers.add(new LoraTrainer.Example(context, chosen, rejected));
            }
            LoraTrainer.Weights w = new LoraTrainer.Weights(1f, 1f, 0.5f);
            List<LoraTrainer.Reference> refs = steers.stream().map(t::reference).toList();
            float lossBefore = 0, marginBefore = 0, lossAfter = 0, marginAfter = 0;
            for (int i = 0; i < steers.size(); i++) {
                var ev = t.evaluate(steers.get(i), refs.get(i), w);
                lossBefore += ev.loss();
                marginBefore += ev.logpChosen() - ev.logpRejected();
            }
            for (int step = 0; step < 8; step++) {
                t.step(steers, refs, w, 1e-3f, 0f);
            }
            for (int i = 0; i < steers.size(); i++) {
                var ev = t.evaluate(steers.get(i), refs.get(i), w);
                lossAfter += ev.loss();
                marginAfter += ev.logpChosen() - ev.logpRejected();
            }
            System.err.printf("Gemma 3 270M, 2 steers, 8 steps: loss %.3f -> %.3f, chosen-rejected margin %.2f -> %.2f%n",
                    lossBefore, lossAfter, marginBefore, marginAfter);
            assertTrue(lossAfter < lossBefore * 0.2, "loss " + lossBefore + " -> " + lossAfter);
            assertTrue(marginAfter > marginBefore + 10, "margin " + marginBefore + " -> " + marginAfter);

            Path adapter = TestModels.dir().resolve("gemma-steers.gguf");
            t.save(adapter);
            try (LoraAdapter a = LoraAdapter.load(m, adapter);
                 LlamaContext ctx = LlamaContext.create(m, LlamaContext.Params.defaults().withContextSize(512))) {
                ctx.setAdapters(List.of(new LlamaContext.AdapterScale(a, 1f)));
                for (LoraTrainer.Example e : steers) {
                    ctx.clear();
                    try (LlamaSampler g = LlamaSampler.create(m, LlamaSampler.Params.greedy())) {
                        int[] out = Generate.toArray(Generate.run(ctx, g, e.context(), 0, e.chosen().length));
                        assertArrayEquals(e.chosen(), out, "the served adapter says the correction: " + m.detokenize(out, false, false));
                    }
                }
                ctx.setAdapters(List.of());
            }
        }
    }
}
