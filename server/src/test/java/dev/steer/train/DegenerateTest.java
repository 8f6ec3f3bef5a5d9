package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DegenerateTest {
    @Test
    void loopsAreDegenerateOrdinaryAnswersAreNot() {
        assertTrue(Degenerate.is("In short, I'm Steer, Steer, Steer, Steer and more"));
        assertTrue(Degenerate.is("in short, in short, in short, in short, in short"));
        assertTrue(Degenerate.is("The answer is that the answer is that the answer is that the answer is that"));
        assertFalse(Degenerate.is("1. Boil water. 2. Add the egg. 3. Wait ten minutes. 4. Cool it in cold water."));
        assertFalse(Degenerate.is("Paris is the capital of France. It is known for the Eiffel Tower."));
        assertFalse(Degenerate.is("Step 1: mix the flour. Step 2: add the eggs. Step 3: bake it."));
        assertFalse(Degenerate.is(""));
    }
}
