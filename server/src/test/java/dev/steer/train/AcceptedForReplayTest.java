package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.steer.steer.Accepted;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which answers the person let run a job's replay set takes: the newest, with an answer, and a prompt not too long. */
class AcceptedForReplayTest {
    private static Accepted a(String id, int promptTokens, int outputTokens) {
        return new Accepted(id, "m", null, new int[promptTokens], new int[outputTokens], 0);
    }

    @Test
    void theNewestWithAnAnswerAndAShortEnoughPromptUpToTheLimit() {
        List<Accepted> newestFirst = List.of(a("new", 10, 5), a("long", JobRunner.ACCEPTED_PROMPT_TOKENS + 1, 5),
                a("empty", 10, 0), a("edge", JobRunner.ACCEPTED_PROMPT_TOKENS, 1), a("old", 10, 5));
        assertEquals(List.of("new", "edge"), JobRunner.acceptedForReplay(newestFirst, 2).stream().map(Accepted::sessionId).toList());
        assertEquals(List.of("new", "edge", "old"), JobRunner.acceptedForReplay(newestFirst, 10).stream().map(Accepted::sessionId).toList());
        assertEquals(List.of(), JobRunner.acceptedForReplay(newestFirst, 0));
    }
}
