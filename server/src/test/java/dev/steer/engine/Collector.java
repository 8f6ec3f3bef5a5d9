package dev.steer.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Collects one generation's events for a test. */
final class Collector implements GenerationListener {
    record Result(List<Integer> tokens, String text, FinishReason reason, Usage usage, List<TokenEvent> events,
                  List<SteerEvent> steers) {}

    private final List<SteerEvent> steers = new ArrayList<>();
    private volatile GenerationOutput output;

    @Override
    public void onSubmitted(GenerationOutput o) {
        output = o;
    }

    /** The generation's output as any thread reads it. */
    GenerationOutput output() {
        return output;
    }

    @Override
    public synchronized void onSteer(SteerEvent e) {
        steers.add(e);
    }

    private final List<TokenEvent> events = new ArrayList<>();
    private final CompletableFuture<Result> done = new CompletableFuture<>();

    @Override
    public synchronized void onToken(TokenEvent e) {
        events.add(e);
    }

    @Override
    public synchronized void onFinish(FinishReason reason, Usage usage) {
        List<Integer> tokens = events.stream().map(TokenEvent::token).filter(t -> t != TokenEvent.NO_TOKEN).toList();
        StringBuilder text = new StringBuilder();
        events.forEach(e -> text.append(e.text()));
        done.complete(new Result(tokens, text.toString(), reason, usage, List.copyOf(events), List.copyOf(steers)));
    }

    @Override
    public void onError(RuntimeException error) {
        done.completeExceptionally(error);
    }

    synchronized int eventCount() {
        return events.size();
    }

    /** Polls {@code condition} until it holds, failing after 30 s: no test waits for ever on the decode thread. */
    static void waitFor(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after 30 s waiting for " + what);
            }
            Thread.sleep(1);
        }
    }

    /** A steer's result, waiting at most 30 s for the decode thread. */
    static SteerEvent steered(CompletableFuture<SteerEvent> steer) throws java.util.concurrent.ExecutionException, InterruptedException {
        try {
            return steer.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("the steer was neither applied nor refused within 30 s", e);
        }
    }

    Result await() {
        return await(60);
    }

    Result await(long seconds) {
        try {
            return done.get(seconds, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("generation did not finish", e);
        }
    }

    /** The error the generation failed with; an AssertionError if it finished or nothing came within the bound. */
    Throwable awaitError(long seconds) {
        try {
            done.get(seconds, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            throw new AssertionError("no error within " + seconds + " s", e);
        }
        throw new AssertionError("the generation finished instead of failing");
    }
}
