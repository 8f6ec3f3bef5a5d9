package dev.steer.train;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * A running job as its followers see it: counters, the loss curve, and an append-only list of events (shaped like
 * OpenAI's {@code fine_tuning.job.event}) that an SSE response can follow with {@link #await}.
 */
public final class JobProgress {
    private final String jobId;
    private final List<JsonObject> events = new ArrayList<>();
    private final JsonArray lossCurve = new JsonArray();
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
        JsonObject point = new JsonObject();
        point.addProperty("step", step);
        point.addProperty("train_loss", loss);
        lossCurve.add(point);
        JsonObject data = new JsonObject();
        data.addProperty("step", step);
        data.addProperty("total_steps", totalSteps);
        data.addProperty("epoch", epoch);
        data.addProperty("train_loss", loss);
        data.addProperty("grad_norm", gradNorm);
        data.addProperty("learning_rate", lr);
        data.addProperty("tokens_per_second", Math.round(tokensPerSecond * 10) / 10.0);
        data.addProperty("eta_seconds", Math.round(etaSeconds * 10) / 10.0);
        add("info", String.format("Step %d/%d: training loss=%.4f", step, totalSteps, loss), "metrics", data);
    }

    /**
     * Nothing more will come: event streams end. Called after the job's final state is stored, so a client that
     * reads the job when its stream ends sees it finished.
     */
    public synchronized void end() {
        finished = true;
        notifyAll();
    }

    private void add(String level, String message, String type, JsonObject data) {
        JsonObject e = new JsonObject();
        e.addProperty("object", "fine_tuning.job.event");
        e.addProperty("id", "ftevent-" + jobId.substring(jobId.indexOf('-') + 1) + "-" + events.size());
        e.addProperty("created_at", System.currentTimeMillis() / 1000);
        e.addProperty("level", level);
        e.addProperty("message", message);
        e.addProperty("type", type);
        if (data != null) {
            e.add("data", data);
        }
        events.add(e);
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
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        o.addProperty("total_steps", totalSteps);
        o.addProperty("epoch", epoch);
        o.addProperty("trained_tokens", trainedTokens);
        o.addProperty("tokens_per_second", Math.round(tokensPerSecond * 10) / 10.0);
        o.addProperty("eta_seconds", Math.round(etaSeconds * 10) / 10.0);
        o.add("loss_curve", lossCurve.deepCopy());
        return o;
    }
}
