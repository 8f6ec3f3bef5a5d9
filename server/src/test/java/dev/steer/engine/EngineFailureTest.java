package dev.steer.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import dev.steer.testing.TestModels;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16: one generation's failure (its listener throws, as a steer store write that fails does) fails that
 * generation only; the decode loop goes on serving the others and new requests. It used to end the decode thread,
 * after which every stream, steer and adapter load waited forever. Every wait here is bounded.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class EngineFailureTest {
    private static final LlamaModel model = TestModels.tinyLlama();
    private Engine engine;

    @BeforeEach
    void start() {
        engine = new Engine(model, new Engine.Config(2, 2048, 256, 2, 8));
    }

    @AfterEach
    void stop() {
        engine.close();
    }

    private static GenerationRequest greedy(String prompt, int maxTokens) {
        return new GenerationRequest(model.tokenize(prompt, true, false), LlamaSampler.Params.greedy(), maxTokens, List.of(), -1, true);
    }

    /** A listener that throws where it is told to; remembers the error the engine then reports. */
    static class Thrower implements GenerationListener {
        final int throwOnToken;
        final boolean throwOnFinish;
        final boolean throwOnSteer;
        final CompletableFuture<RuntimeException> error = new CompletableFuture<>();
        volatile int tokens;

        Thrower(int throwOnToken, boolean throwOnFinish, boolean throwOnSteer) {
            this.throwOnToken = throwOnToken;
            this.throwOnFinish = throwOnFinish;
            this.throwOnSteer = throwOnSteer;
        }

        @Override
        public void onToken(TokenEvent event) {
            if (++tokens == throwOnToken) {
                throw new IllegalStateException("listener failed on token " + tokens + " (test)");
            }
        }

        @Override
        public void onSteer(SteerEvent event) {
            if (throwOnSteer) {
                throw new IllegalStateException("could not store the steer (test)");
            }
        }

        @Override
        public void onFinish(FinishReason reason, Usage usage) {
            if (throwOnFinish) {
                throw new IllegalStateException("could not store the continuation (test)");
            }
            error.completeExceptionally(new AssertionError("finished without the expected failure"));
        }

        @Override
        public void onError(RuntimeException e) {
            error.complete(e);
        }

        RuntimeException awaitError() throws Exception {
            return error.get(20, TimeUnit.SECONDS);
        }
    }

    @Test
    void aListenerThatThrowsOnItsThirdTokenFailsOnlyItsOwnGeneration() throws Exception {
        Collector other = new Collector();
        engine.submit(greedy("the other stream runs on", 16), other);
        Thrower thrower = new Thrower(3, false, false);
        engine.submit(greedy("this one throws", 40), thrower);

        assertTrue(thrower.awaitError().getMessage().contains("on token 3"), "its own client hears of its failure");
        assertEquals(3, thrower.tokens, "no token after the failure");
        Collector.Result r = other.await(20);
        assertEquals(16, r.tokens().size(), "the other stream completed normally");
        assertEquals(FinishReason.LENGTH, r.reason());

        Collector after = new Collector();
        engine.submit(greedy("the other stream runs on", 16), after);
        assertEquals(r.tokens(), after.await(20).tokens(), "a new request is answered, and the same way");
        assertEquals(0, engine.stats().active.get(), "both sequences were freed");
    }

    @Test
    void aListenerThatThrowsWhenItFinishesGetsAnErrorInstead() throws Exception {
        Thrower thrower = new Thrower(-1, true, false);
        engine.submit(greedy("finishing fails", 8), thrower);
        assertTrue(thrower.awaitError().getMessage().contains("continuation"));
        Collector after = new Collector();
        engine.submit(greedy("still serving", 8), after);
        assertEquals(8, after.await(20).tokens().size());
    }

    @Test
    void aSteerWhoseListenerThrowsFailsTheSteerAndItsGenerationOnly() throws Exception {
        Collector other = new Collector();
        engine.submit(greedy("the other stream runs on", 24), other);
        Thrower thrower = new Thrower(-1, false, true);
        Generation g = engine.submit(greedy("this one is steered", 100_000), thrower);
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (thrower.tokens < 5) {
            assertTrue(System.nanoTime() < deadline, "no tokens");
            Thread.sleep(1);
        }
        CompletableFuture<SteerEvent> steer = g.steer(2, model.tokenize(" steer", false, false), 0);
        ExecutionException e = assertThrows(ExecutionException.class, () -> steer.get(20, TimeUnit.SECONDS));
        assertTrue(e.getCause().getMessage().contains("could not store the steer"), e.getCause().toString());
        assertTrue(thrower.awaitError().getMessage().contains("could not store the steer"));
        assertEquals(24, other.await(20).tokens().size(), "the other stream completed normally");
        Collector after = new Collector();
        engine.submit(greedy("still serving", 8), after);
        assertEquals(8, after.await(20).tokens().size());
    }

    @Test
    void anErrorInAListenerEndsTheDecodeThreadButLeavesNoOneWaiting() throws Exception {
        Collector other = new Collector();
        Generation running = engine.submit(greedy("the other stream runs on", 100_000), other);
        while (other.eventCount() < 3) {
            Thread.sleep(1);
        }
        engine.submit(greedy("this one ends the thread", 8), new Thrower(-1, false, false) {
            @Override
            public void onToken(TokenEvent event) {
                throw new StackOverflowError("not an exception: the decode thread cannot go on (test)");
            }
        });
        assertTrue(other.awaitError(20) instanceof EngineUnavailableException, "the running stream hears of it");
        assertTrue(engine.death() instanceof StackOverflowError);
        assertThrows(EngineUnavailableException.class, () -> engine.submit(greedy("too late", 4), new Collector()));
        ExecutionException task = assertThrows(ExecutionException.class,
                () -> engine.onDecodeThread(() -> 1).get(5, TimeUnit.SECONDS));
        assertTrue(task.getCause() instanceof EngineUnavailableException);
        ExecutionException steer = assertThrows(ExecutionException.class,
                () -> running.steer(1, model.tokenize(" x", false, false), 0).get(5, TimeUnit.SECONDS));
        assertTrue(steer.getCause() instanceof EngineUnavailableException);
        assertEquals(0, engine.stepNanos(), "not inside a step: dead, which /health tells apart");
    }

    /**
     * A decode step that outlives close's 10 s wait (here a steer's listener that blocks while storing it) still
     * uses the context and the samplers right after: close leaves them unfreed rather than free them under it (the
     * step's next sample failed on a closed sampler; a free during a native call would crash the JVM).
     */
    @Test
    void closeDoesNotFreeTheContextUnderADecodeStepThatOutlivesIt() throws Exception {
        Engine stuck = new Engine(model, new Engine.Config(1, 1024, 64, 1, 4));
        CountDownLatch inSteer = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<Void> sampledAfter = new CompletableFuture<>();
        AtomicInteger tokens = new AtomicInteger();
        Generation g = stuck.submit(greedy("this one is steered", 100_000), new GenerationListener() {
            @Override
            public void onToken(TokenEvent event) {
                tokens.incrementAndGet();
                if (inSteer.getCount() == 0) {
                    sampledAfter.complete(null);
                }
            }

            @Override
            public void onSteer(SteerEvent event) {
                inSteer.countDown();
                try {
                    release.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }

            @Override
            public void onFinish(FinishReason reason, Usage usage) {}

            @Override
            public void onError(RuntimeException e) {
                sampledAfter.completeExceptionally(e);
            }
        });
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (tokens.get() < 5) {
            assertTrue(System.nanoTime() < deadline, "no tokens");
            Thread.sleep(1);
        }
        g.steer(2, model.tokenize(" steer", false, false), 0);
        assertTrue(inSteer.await(30, TimeUnit.SECONDS), "the steer reached its listener");
        stuck.close();  // waits 10 s for the decode thread, which is still storing the steer
        release.countDown();
        sampledAfter.get(30, TimeUnit.SECONDS);  // the step went on to sample its next token, on the context it had
        Collector after = new Collector();
        engine.submit(greedy("still serving", 8), after);
        assertEquals(8, after.await(20).tokens().size(), "this process is alive and serving");
    }
}
