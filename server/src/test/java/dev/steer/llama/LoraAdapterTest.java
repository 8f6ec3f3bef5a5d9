package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class LoraAdapterTest {
    private final LlamaModel model = TestModels.tinyLlama();

    private float[] lastLogits(LlamaContext ctx, int[] prompt) {
        ctx.clear();
        Batch b = ctx.newBatch();
        for (int i = 0; i < prompt.length; i++) {
            b.add(prompt[i], i, 0, i == prompt.length - 1);
        }
        ctx.decode(b);
        return ctx.logits(b.size() - 1);
    }

    @Test
    void adapterLoadedAtRunTimeChangesLogitsAndScaleZeroRestoresTheBaseExactly() {
        Path file = TinyModels.writeLoraAdapter(TestModels.dir().resolve("adapter.gguf"), TinyModels.DEFAULT, 4, 4f, 3);
        int[] prompt = model.tokenize("hello world, the model", true, false);
        try (LlamaContext ctx = LlamaContext.create(model, LlamaContext.Params.defaults().withContextSize(256).exact());
             LoraAdapter adapter = LoraAdapter.load(model, file)) {
            assertEquals("lora", adapter.metadata("adapter.type"));
            float[] base = lastLogits(ctx, prompt);

            ctx.setAdapters(List.of(new LlamaContext.AdapterScale(adapter, 1f)));
            float[] adapted = lastLogits(ctx, prompt);
            double maxDiff = 0;
            for (int v = 0; v < base.length; v++) {
                maxDiff = Math.max(maxDiff, Math.abs(base[v] - adapted[v]));
            }
            assertTrue(maxDiff > 1e-2, "the adapter changes the logits, max |diff| = " + maxDiff);

            ctx.setAdapters(List.of(new LlamaContext.AdapterScale(adapter, 0f)));
            assertArrayEquals(base, lastLogits(ctx, prompt), "scale 0 is the base model, bit for bit");

            assertThrows(IllegalStateException.class, adapter::close, "in use by the context");
            ctx.setAdapters(List.of());
            assertArrayEquals(base, lastLogits(ctx, prompt));
        }
    }
}
