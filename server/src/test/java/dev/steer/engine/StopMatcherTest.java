package dev.steer.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopMatcherTest {
    @Test
    void stopSpanningSeveralPiecesIsFoundAndNeverEmitted() {
        StopMatcher m = new StopMatcher(List.of("END"));
        assertEquals("hello ", m.append("hello E"));
        assertEquals("", m.append("N"));
        assertEquals("", m.append("Dtrailing"));
        assertTrue(m.stopped());
        assertEquals("", m.flush());
    }

    @Test
    void falseStartIsReleased() {
        StopMatcher m = new StopMatcher(List.of("END", "\n\n"));
        assertEquals("a", m.append("aE"));
        assertEquals("ENx", m.append("Nx"));
        assertEquals("b", m.append("b\n"));
        assertEquals("\nc", m.append("c"));
        assertFalse(m.stopped());
        assertEquals("", m.flush());
    }

    @Test
    void earliestStopWinsAndHeldTextIsFlushedAtTheEnd() {
        StopMatcher m = new StopMatcher(List.of("xyz", "y"));
        assertEquals("ab", m.append("abx"));
        assertEquals("", m.append("yz"), "xyz starts before y");
        assertTrue(m.stopped());
        StopMatcher k = new StopMatcher(List.of("xyz", "y"));
        assertEquals("x", k.append("xy"), "y ends the text before xyz could complete");
        StopMatcher n = new StopMatcher(List.of("stop"));
        assertEquals("the ", n.append("the sto"));
        assertEquals("sto", n.flush());
    }
}
