package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.TestModels;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The base model's side of examples kept between jobs: the first ask computes the trainer's own reference (the
 * numbers of {@link LoraTrainer#reference}, entry by entry), a later ask for the same example and first adapted block
 * gets that one back without a pass (even from another trainer, as the next job's), with the lower blocks' output
 * handed to that trainer; another example or another first adapted block is a reference of its own; past the bound
 * the least recently used goes first.
 */
class ReferencesTest {
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
        References kept = new References();
        LoraTrainer.Reference first;
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2)) {
            first = kept.reference(t, a);
            assertSameNumbers(t.reference(a), first);
            assertEquals(1, kept.size());
            assertTrue(kept.has(0, a));
        }
        try (LoraTrainer next = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 2, 2)) {  // the next job's trainer
            assertSame(first, kept.reference(next, a));
            assertEquals(1, kept.size());
            LoraTrainer.Reference other = kept.reference(next, b);
            assertSameNumbers(next.reference(b), other);
            assertEquals(2, kept.size());
        }
        int layers = model.info().layers();
        try (LoraTrainer last = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 1, 2)) {  // the last block only
            assertEquals(layers - 1, last.firstAdapted());
            kept.reference(last, a);  // blocks adapted from another one on: a key of its own (the trainer's own first block)
            assertEquals(3, kept.size());
            assertTrue(kept.has(layers - 1, a));
        }
    }

    @Test
    void aKeptReferenceGivesTheNextTrainerTheLowerBlocksToo() {
        LoraTrainer.Example a = replay("hello world,", " the base model's answer to a built-in prompt");
        References kept = new References();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 1, 2)) {
            kept.reference(t, a);
            assertEquals(1, t.lowerPasses());
        }
        try (LoraTrainer next = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 2, 2)) {
            kept.reference(next, a);
            next.evaluate(a, next.reference(a), new LoraTrainer.Weights(0f, 0f, 0.1f, 1f));
            assertEquals(0, next.lowerPasses(), "handed the kept input, the next trainer computes no lower block");
        }
    }

    @Test
    void pastTheBoundTheLeastRecentlyUsedGoesFirst() {
        LoraTrainer.Example a = replay("hello world,", " one answer"), b = replay("hello world,", " another answer"),
                c = replay("hello world,", " a third answer");
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 1, 2)) {
            int first = t.firstAdapted();
            References probe = new References();
            probe.reference(t, a);
            probe.reference(t, b);
            long two = probe.bytes();
            References kept = new References(two + 1);  // room for two of these
            kept.reference(t, a);
            kept.reference(t, b);
            kept.reference(t, a);  // a used last: b is the least recently used
            kept.reference(t, c);
            assertEquals(2, kept.size());
            assertTrue(kept.has(first, a) && kept.has(first, c) && !kept.has(first, b), "b dropped");
            assertTrue(kept.bytes() <= two + 1);
        }
    }

    /**
     * The preparation's two rules: what no job reads any more is dropped first (retainOnly), and an example is
     * prepared only while it fits without dropping another (hasRoomFor, an upper bound of what it will take).
     */
    @Test
    void retainOnlyDropsTheRestAndRoomIsJudgedBeforeComputing() {
        LoraTrainer.Example a = replay("hello world,", " one answer"), b = replay("hello world,", " another answer");
        int embd = model.info().embeddingSize();
        try (LoraTrainer t = LoraTrainer.create(model, LoraTrainer.ALL_TARGETS, 4, 8f, 1, 1, 2)) {
            int first = t.firstAdapted();
            References kept = new References();
            kept.reference(t, a);
            kept.reference(t, b);
            long bytesOfA = kept.bytes();
            kept.retainOnly(first, List.of(b));
            assertEquals(1, kept.size());
            assertTrue(kept.has(first, b) && !kept.has(first, a));
            bytesOfA -= kept.bytes();
            assertTrue(bytesOfA > 0 && kept.bytes() > 0, "the bytes follow what is kept");
            kept.retainOnly(first, List.of());
            assertEquals(0, kept.size());
            assertEquals(0, kept.bytes());

            References small = new References(1);
            assertTrue(!small.hasRoomFor(a, embd), "no room in one byte");
            References roomy = new References();
            assertTrue(roomy.hasRoomFor(a, embd));
            roomy.reference(t, a);
            long estimate = (a.tokens().length + a.rejected().length) * (8L * LoraTrainer.REFERENCE_TOP_K + 4L * embd) + 256;
            assertTrue(roomy.bytes() <= estimate, "the estimate bounds what is kept: " + roomy.bytes() + " <= " + estimate);
        }
    }
}
