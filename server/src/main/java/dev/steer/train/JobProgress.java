package dev.steer.train;

import com.google.gson.JsonObject;
import dev.steer.json.Json;
import dev.steer.json.OmitWhenNull;
import java.util.ArrayList;
import java.util.List;

/**
 * A running job as its followers see it: counters, the loss curve, and an append-only list of events (shaped like
 * OpenAI's {@code fine_tuning.job.event}) that an SSE response can follow with {@link #await}. The JSON comes from
 * the records below through the server's one Gson configuration ({@link Json}).
 */
public final class JobProgress {
    /** OpenAI's {@code fine_tuning.job.event}; {@code data} only on metrics events. */
    public record Event(String object, String id, long createdAt, String level, String message, String type,
                        @OmitWhenNull StepMetrics data) {}

    /** What a metrics event says of one optimizer step. */
    public record StepMetrics(int step, int totalSteps, int epoch, float trainLoss, float gradNorm, float learningRate,
                              double tokensPerSecond, double etaSeconds) {}

    /** One point of the loss curve. */
    public record LossPoint(int step, float trainLoss) {}

    /** The counters and curve of the job object while it runs (and stored with the finished job). */
    public record Counters(int step, int totalSteps, int epoch, long trainedTokens, double tokensPerSecond, double etaSeconds,
                           List<LossPoint> lossCurve) {}

    private final String jobId;
    private final List<JsonObject> events = new ArrayList<>();
    private final List<LossPoint> lossCurve = new ArrayList<>();
    private int step, totalSteps, epoch;
    private double tokensPerSecond, etaSeconds;
    private long trainedTokens;
    private boolean finished;

    public JobProgress(String jobId) {
        this.jobId = jobId;
    }

    public synchronized void message(String level, String message) {
        add(level, message, "message", null);
    }

    /** After each optimizer step. */
    public synchronized void stepped(int step, int totalSteps, int epoch, float loss, float gradNorm, float lr, long tokens, double tokensPerSecond, double etaSeconds) {
        this.step = step;
        this.totalSteps = totalSteps;
        this.epoch = epoch;
        this.trainedTokens = tokens;
        this.tokensPerSecond = tokensPerSecond;
        this.etaSeconds = etaSeconds;
        lossCurve.add(new LossPoint(step, loss));
        add("info", String.format("Step %d/%d: training loss=%.4f", step, totalSteps, loss), "metrics",
                new StepMetrics(step, totalSteps, epoch, loss, gradNorm, lr, tenths(tokensPerSecond), tenths(etaSeconds)));
    }

    private static double tenths(double x) {
        return Math.round(x * 10) / 10.0;
    }

    /**
     * Nothing more will come: event streams end. Called after the job's final state is stored, so a client that
     * reads the job when its stream ends sees it finished.
     */
    public synchronized void end() {
        finished = true;
        notifyAll();
    }

    private void add(String level, String message, String type, StepMetrics data) {
        String id = "ftevent-" + jobId.substring(jobId.indexOf('-') + 1) + "-" + events.size();
        Event e = new Event("fine_tuning.job.event", id, System.currentTimeMillis() / 1000, level, message, type, data);
        events.add(Json.tree(e).getAsJsonObject());
        notifyAll();
    }

    /** Events from index {@code from} on, waiting up to {@code millis} for one if there are none yet. */
    public synchronized List<JsonObject> await(int from, long millis) throws InterruptedException {
        if (from >= events.size() && !finished) {
            wait(millis);
        }
        return from >= events.size() ? List.of() : List.copyOf(events.subList(from, events.size()));
    }

    public synchronized boolean finished() {
        return finished;
    }

    public synchronized List<JsonObject> events() {
        return List.copyOf(events);
    }

    /** Counters and curve for the job object. */
    public synchronized JsonObject snapshot() {
        return Json.tree(new Counters(step, totalSteps, epoch, trainedTokens, tenths(tokensPerSecond), tenths(etaSeconds),
                List.copyOf(lossCurve))).getAsJsonObject();
    }
}
