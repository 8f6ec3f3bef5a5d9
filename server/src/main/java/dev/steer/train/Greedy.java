package dev.steer.train;

import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.engine.FinishReason;
import dev.steer.engine.GenerationListener;
import dev.steer.engine.GenerationRequest;
import dev.steer.engine.QueueFullException;
import dev.steer.engine.TokenEvent;
import dev.steer.engine.Usage;
import dev.steer.llama.LoraAdapter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Greedy answers through the serving engine, under a model name ({@code base@base}, {@code base@v3}): how a job
 * gets the base model's answers for its replay set and how the gate sees what an adapter would say. Running them
 * on the engine (its KV cache, batched with live traffic) costs a fraction of what the trainer's full forward per
 * token would. Answers hold every token the model produced, its end-of-generation token included.
 */
final class Greedy {
    private static final long TIMEOUT_SECONDS = 300;

    private final Engine engine;
    private final ServedAdapters served;

    Greedy(Engine engine, ServedAdapters served) {
        this.engine = engine;
        this.served = served;
    }

    /** Greedy continuations of each prompt, {@code maxTokens} at most, decoded up to the engine's parallelism at a time. */
    List<int[]> answers(String model, List<int[]> prompts, int maxTokens) {
        return answers(model, prompts, maxTokens, engine.config().parallel());
    }

    /** The same, at most {@code inFlight} at a time (a background task leaves the other slots to the people it serves). */
    List<int[]> answers(String model, List<int[]> prompts, int maxTokens, int inFlight) {
        // Resolved and submitted under ServedAdapters' lock: the adapter cannot be retired in between.
        return answers(prompts, maxTokens, inFlight, (r, l) -> served.submit(model, sel -> engine.submit(r.withAdapter(sel.adapter()), l)));
    }

    /**
     * The same with an adapter no model name serves (a job's adapter so far, loaded for its own text; see
     * {@link JobRunner}): the caller owns it and retires it after the answers.
     */
    List<int[]> answers(LoraAdapter adapter, List<int[]> prompts, int maxTokens) {
        return answers(prompts, maxTokens, engine.config().parallel(), (r, l) -> engine.submit(r.withAdapter(adapter), l));
    }

    /** How one greedy request reaches the engine, with its adapter. */
    private interface Submitter {
        void submit(GenerationRequest request, GenerationListener listener);
    }

    /**
     * Up to {@code inFlight} at a time: the next prompt is submitted as soon as any answer ends, so no slot waits for
     * the longest answer of a group. Answers in the prompts' order. After a failed answer no more prompts are
     * submitted; the failure is thrown when its answer's turn comes.
     */
    private List<int[]> answers(List<int[]> prompts, int maxTokens, int inFlight, Submitter submitter) {
        Semaphore slots = new Semaphore(Math.max(1, inFlight));
        AtomicBoolean failed = new AtomicBoolean();
        List<CompletableFuture<int[]>> running = new ArrayList<>(prompts.size());
        for (int[] p : prompts) {
            try {
                if (!slots.tryAcquire(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("a greedy answer took longer than " + TIMEOUT_SECONDS + " s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while generating");
            }
            if (failed.get()) {
                slots.release();
                break;
            }
            CompletableFuture<int[]> f;
            try {
                f = submit(submitter, p, maxTokens);
            } catch (RuntimeException e) {
                slots.release();
                throw e;
            }
            f.whenComplete((answer, error) -> {
                if (error != null) {
                    failed.set(true);
                }
                slots.release();
            });
            running.add(f);
        }
        List<int[]> out = new ArrayList<>(prompts.size());
        for (CompletableFuture<int[]> f : running) {
            try {
                out.add(f.get(TIMEOUT_SECONDS, TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while generating");
            } catch (ExecutionException e) {
                throw new IllegalStateException("generation failed: " + e.getCause().getMessage(), e.getCause());
            } catch (TimeoutException e) {
                throw new IllegalStateException("a greedy answer took longer than " + TIMEOUT_SECONDS + " s");
            }
        }
        return out;
    }

    private CompletableFuture<int[]> submit(Submitter submitter, int[] prompt, int maxTokens) {
        CompletableFuture<int[]> done = new CompletableFuture<>();
        List<Integer> tokens = new ArrayList<>();
        GenerationListener l = new GenerationListener() {
            @Override
            public void onToken(TokenEvent e) {
                if (e.token() != TokenEvent.NO_TOKEN) {
                    tokens.add(e.token());
                }
            }

            @Override
            public void onFinish(FinishReason reason, Usage usage) {
                done.complete(tokens.stream().mapToInt(Integer::intValue).toArray());
            }

            @Override
            public void onError(RuntimeException error) {
                done.completeExceptionally(error);
            }
        };
        int len = Math.min(maxTokens, engine.contextPerSequence() - prompt.length - 1);
        if (len < 1) {
            return CompletableFuture.completedFuture(new int[0]);
        }
        for (int attempt = 0; ; attempt++) {
            try {
                submitter.submit(GenerationRequest.greedy(prompt, len), l);
                return done;
            } catch (QueueFullException e) {
                if (attempt >= 600) {
                    throw e;
                }
                try {
                    Thread.sleep(100);  // live traffic fills the queue; wait for room (bounded: a minute)
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }
}
