package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.engine.FinishReason;
import dev.steer.engine.Generation;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationOutput;
import dev.steer.engine.OutputWriter;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.SteerEvent;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.TopLogprobs;
import dev.steer.testing.TestModels;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Steering on its own, with a launcher standing in for the engine: a continuation (a steer on a finished answer)
 * that runs to its end before the launcher even returns, as a short one can on a free engine. The session must stay
 * finished (issue 12's start race: marked live again, it would never expire and would hold its request), and the
 * steer must be recorded with its continuation.
 */
@Timeout(60)
class SteeringTest {
    static final long TTL = 60_000;

    @Test
    void aContinuationThatEndsBeforeItsLaunchReturnsLeavesTheSessionFinishedAndRecorded() throws Exception {
        LlamaModel model = TestModels.tinyLlama();
        AtomicLong clock = new AtomicLong(1_000_000);
        Sessions sessions = new Sessions(TTL, clock::get);
        try (SteerStore store = SteerStore.open(Files.createTempDirectory("steering-test").resolve("steers.db"))) {
            int[] prompt = model.tokenize("hello there", true, false);
            Session s = sessions.open("chatcmpl-race", "tiny", "tiny", null, "{\"messages\":[]}", GenerationRequest.greedy(prompt, 8));
            s.starting();
            int[] answer = model.tokenize(" one two three four", false, false);
            s.adopt(GenerationOutput.of(answer));  // what the first generation wrote
            s.finished(clock.get());
            assertNull(s.live());

            Generation ended = new Generation() {
                @Override
                public void cancel() {}

                @Override
                public CompletableFuture<SteerEvent> steer(int at, int[] correction, int maxTokens) {
                    return CompletableFuture.failedFuture(new IllegalStateException("finished"));
                }
            };
            int[] continuation = model.tokenize(" five", false, false);
            Steering steering = new Steering(model, store, 512, Duration.ofSeconds(10));
            GenerationListener client = new GenerationListener() {
                @Override
                public void onToken(TokenEvent event) {}

                @Override
                public void onFinish(FinishReason reason, Usage usage) {}

                @Override
                public void onError(RuntimeException error) {}
            };
            Steering.Outcome o = steering.steer(s, new Steering.Ask(2, null, " 2", 4), client, r -> {},
                    (next, listener) -> {
                        // What the engine does for a continuation, all of it before the submit returns: its output handed
                        // over, the fork decoded (its log-probs added), the continuation's tokens, the end.
                        GenerationOutput out = OutputWriter.startOf(next);
                        listener.onSubmitted(out);
                        SteerEvent e = next.steer();
                        listener.onSteer(new SteerEvent(e.at(), e.accepted(), e.rejected(), e.correction(),
                                new TopLogprobs(new int[] {answer[2]}, new float[] {-0.5f})));
                        OutputWriter.showSteer(out);
                        for (int t : continuation) {
                            OutputWriter.append(out, t);
                            listener.onToken(new TokenEvent(t, model.tokenBytes(t, false), "", 0f, null));
                        }
                        listener.onFinish(FinishReason.LENGTH, new Usage(next.prompt().length, 0, continuation.length));
                        return ended;
                    });
            assertInstanceOf(Steering.Continued.class, o);
            assertNull(s.live(), "a continuation that ended before its launch returned is not live again");
            assertFalse(s.steering.get(), "the steer released the session");

            // Recorded (once its write is done): where it cut, what it rejected, and the continuation that ran.
            s.lastSteerStored().get();
            SteerRecord r = store.get(s.lastSteerId()).orElseThrow();
            assertEquals(2, r.at());
            assertEquals(answer.length - 2, r.rejectedTokens().length);
            store.writer().submit(() -> {}).get();  // the continuation's write, handed over at the end, is done too
            SteerRecord after = store.get(r.id()).orElseThrow();
            assertEquals(continuation.length, after.continuationTokens().length, "the continuation that ran is on the record");
            int[] expected = IntStream.concat(IntStream.concat(Arrays.stream(answer, 0, 2), Arrays.stream(r.correctionTokens())),
                    Arrays.stream(continuation)).toArray();
            assertArrayEquals(expected, s.output(),
                    "the session reads the continuation's output: kept, correction, continuation");

            // And it expires like any finished session.
            clock.addAndGet(TTL + 1);
            assertTrue(sessions.get("chatcmpl-race").isEmpty(), "the finished session expires after its TTL");
        }
    }
}
