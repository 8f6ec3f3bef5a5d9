package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.TestModels;
import org.junit.jupiter.api.Test;

/**
 * The built-in examples' references kept between jobs: the first ask computes the trainer's own reference (the
 * numbers of {@link LoraTrainer#reference}, entry by entry), a later ask for the same example and first adapted block
 * gets that one back without a pass (even from another trainer, as the next job's), and another example or another
 * first adapted block is a reference of its own.
 */
class BaseReferencesTest {
    private final LlamaModel model = TestModels.tinyLlama();

    private LoraTrainer.Example replay(String prompt, String answer) {
        return JobRunner.replayExample(model.tokenize(prompt, true, false), model.tokenize(answer, false, false));
    }

    private static void assertSameNumbers(LoraTrainer.Reference want, LoraTrainer.Reference got) {
        assertEquals(want.logpChosen(), got.logpChosen());
        assertEquals(want.logpRejected(), got.logpRejected());
        assertArrayEquals(want.keepIds(), got.keepIds());
        assertArrayEquals(want.keepProbs(), got.keepProbs());
        assertEquals(want.keepEntropy(), got.keepEntropy());
    }

    @Test
    void keepsEachExamplesReferenceOncePerFirstAdaptedBlock() {
        LoraTrainer.Example a = replay("hello world,", " the base model's answer to a built-in prompt");
        LoraTrainer.Example b = replay("hello world,", " another answer");
        BaseReferences kept = new BaseReferences();
        LoraTrainer.Reference first;
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            first = kept.reference(t, 0, a);
            assertSameNumbers(t.reference(a), first);
            assertEquals(1, kept.size());
        }
        try (LoraTrainer next = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 2, 2)) {  // the next job's trainer
            assertSame(first, kept.reference(next, 0, a));
            assertEquals(1, kept.size());
            LoraTrainer.Reference other = kept.reference(next, 0, b);
            assertSameNumbers(next.reference(b), other);
            assertEquals(2, kept.size());
            kept.reference(next, 1, a);  // blocks adapted from another one on: a key of its own
            assertEquals(3, kept.size());
        }
    }
}
