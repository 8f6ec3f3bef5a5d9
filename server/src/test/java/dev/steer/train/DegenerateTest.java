package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DegenerateTest {
    @Test
    void loopsAreDegenerate() {
        assertTrue(Degenerate.is("In short, I'm Steer, Steer, Steer, Steer and more"));
        assertTrue(Degenerate.is("in short, in short, in short, in short, in short"));
        assertTrue(Degenerate.is("The answer is that the answer is that the answer is that the answer is that"));
        // seen on SmolLM2-135M (bench/efficacy): a learned sentence said again, a list item said again
        assertTrue(Degenerate.is("I am Steer, a small assistant that learns from your corrections. I am a small "
                + "assistant that learns from your corrections. I am a small assistant that learns from your corrections."));
        assertTrue(Degenerate.is("Step 6: Remove any glass\n\nStep 7: Clean the glass\n\nStep 8: Remove any glass"));
    }

    @Test
    void ordinaryAnswersAreNot() {
        assertFalse(Degenerate.is("1. Boil water. 2. Add the egg. 3. Wait ten minutes. 4. Cool it in cold water."));
        assertFalse(Degenerate.is("Paris is the capital of France. It is known for the Eiffel Tower."));
        assertFalse(Degenerate.is("Step 1: mix the flour. Step 2: add the eggs. Step 3: bake it."));
        assertFalse(Degenerate.is(""));
        // a phrase in three items of a list, each item its own (counted as a loop with four-word phrases)
        assertFalse(Degenerate.is("Step 1: Choose a gift that is suitable for your family.\nStep 2: Select a gift "
                + "that is not too expensive.\nStep 3: Choose a gift that is not too large.\nStep 4: Wrap it."));
        assertFalse(Degenerate.is("Step 1\nStep 2\nStep 3"));  // short lines may repeat (headings, numbers)
    }
}
