package dev.steer.http;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.steer.adapters.AdapterVersion;
import dev.steer.json.Json;
import dev.steer.json.OmitWhenNull;
import dev.steer.llama.LoraTrainer;
import dev.steer.train.EvalGate;
import dev.steer.train.Hyperparameters;
import dev.steer.train.JobProgress;
import dev.steer.train.JobRunner;
import dev.steer.train.JobSpec;
import dev.steer.train.JobStore;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;

/** /v1/fine_tuning/jobs: train an adapter over recorded steers, follow it, cancel it. Shaped like OpenAI's API. */
final class FineTuningRoutes {
    /** Jobs that may wait to run; more get 429. Each one is minutes of training: a longer queue is a mistake or abuse. */
    static final int MAX_QUEUED_JOBS = 16;

    private final JobRunner runner;
    private final JobStore jobs;
    private final String baseModel;

    /**
     * A job as OpenAI shapes it, plus Steer's own fields; the live counters (step, loss curve, eval report, ...) appear
     * once the job has them.
     */
    record JobJson(String object, String id, String model, String method, long createdAt, Long finishedAt, String status,
                   String fineTunedModel, String adapterVersion, JobError error, Hyperparameters hyperparameters,
                   JobSpec.Filters filters, EvalGate.Settings evalSettings, @OmitWhenNull JsonElement step,
                   @OmitWhenNull JsonElement totalSteps, @OmitWhenNull JsonElement epoch, @OmitWhenNull JsonElement trainedTokens,
                   @OmitWhenNull JsonElement tokensPerSecond, @OmitWhenNull JsonElement etaSeconds,
                   @OmitWhenNull JsonElement lossCurve, @OmitWhenNull JsonElement eval) {}

    record JobError(String message, String code, String param) {}

    record JobPage(String object, List<JobJson> data, boolean hasMore) {}

    /** The job's events; each one is JobProgress's event object (or the one below, for a job that failed before running). */
    record EventPage(String object, List<JsonElement> data, boolean hasMore) {}

    FineTuningRoutes(JobRunner runner, JobStore jobs, String baseModel) {
        this.runner = runner;
        this.jobs = jobs;
        this.baseModel = baseModel;
    }

    /** POST /v1/fine_tuning/jobs {"model", "method", "hyperparameters", "filters", "eval"}. */
    void create(Context ctx) {
        RequestBody b = RequestBody.parse(ctx.body());
        String model = b.string("model", baseModel);
        if (!model.equals(baseModel)) {
            throw ApiError.invalid("model", "Jobs train an adapter for the base model '" + baseModel + "'; got '" + model + "'.");
        }
        Hyperparameters.Method method = method(b);
        JobSpec spec = new JobSpec(baseModel, method, hyperparameters(b.nested("hyperparameters"), method),
                filters(b.nested("filters")), eval(b.nested("eval")));
        JobStore.Job job;
        synchronized (this) {  // count and queue as one step: only this route adds queued jobs
            long queued = jobs.list().stream().filter(j -> j.status() == JobStore.Status.QUEUED).count();
            if (queued >= MAX_QUEUED_JOBS) {
                throw new ApiError(429, "rate_limit_exceeded", queued + " fine-tuning jobs are queued already, the most this server"
                        + " takes is " + MAX_QUEUED_JOBS + ". Wait for one to start, or cancel one.", null, "too_many_jobs");
            }
            job = runner.submit(spec);
        }
        Respond.json(ctx, 200, json(job));
    }

    void list(Context ctx) {
        Respond.json(ctx, 200, new JobPage("list", jobs.list().stream().map(this::json).toList(), false));
    }

    void get(Context ctx) {
        Respond.json(ctx, 200, json(job(ctx)));
    }

    /** POST .../cancel: a queued job is cancelled at once, a running one at its next step. */
    void cancel(Context ctx) {
        JobStore.Job j = job(ctx);
        if (!runner.cancel(j.id())) {
            throw new ApiError(400, "invalid_request_error", "Job " + j.id() + " has already " + j.status().json() + ".", "id", "job_finished");
        }
        JobStore.Job now = jobs.get(j.id()).orElseThrow();
        // A running job stops at its next step: until then it is "cancelling".
        Respond.json(ctx, 200, json(now, now.status() == JobStore.Status.RUNNING ? "cancelling" : now.status().json()));
    }

    /**
     * GET .../events: the job's events, newest first, as OpenAI lists them; with {@code ?stream=true} or
     * {@code Accept: text/event-stream}, an SSE stream that follows the job live (oldest first) until it ends.
     */
    void events(Context ctx) throws IOException, InterruptedException {
        JobStore.Job j = job(ctx);
        boolean stream = "true".equals(ctx.queryParam("stream"))
                || (ctx.header("Accept") != null && ctx.header("Accept").contains("text/event-stream"));
        if (!stream) {
            List<JsonElement> all = new ArrayList<>(events(j));
            java.util.Collections.reverse(all);
            Respond.json(ctx, 200, new EventPage("list", all, false));
            return;
        }
        OutputStream out = Respond.startEvents(ctx);
        try {
            JobProgress p = waitForProgress(j);
            if (p == null) {
                for (JsonElement e : events(jobs.get(j.id()).orElseThrow())) {
                    Respond.send(out, e);
                }
            } else {
                int sent = 0;
                while (true) {
                    boolean finished = p.finished();
                    List<JsonObject> next = p.await(sent, 1000);
                    for (JsonObject e : next) {
                        Respond.send(out, e);
                    }
                    sent += next.size();
                    if (finished && next.isEmpty()) {
                        break;
                    }
                    if (next.isEmpty()) {
                        Respond.write(out, ": keep-alive\n\n");  // also finds out when the client has gone
                    }
                }
            }
            Respond.write(out, "data: [DONE]\n\n");
        } catch (IOException clientGone) {
            // nothing to stop: the job runs on without followers
        }
    }

    /** A queued job has no progress yet: wait for it to start (or end). Null if it ran before this server started. */
    private JobProgress waitForProgress(JobStore.Job j) throws InterruptedException {
        long runningSince = -1;
        while (true) {
            JobProgress p = runner.progress(j.id());
            if (p != null) {
                return p;
            }
            JobStore.Job now = jobs.get(j.id()).orElseThrow();
            if (now.status().finished()) {
                return runner.progress(j.id());
            }
            // The runner marks a job running in the store just before it publishes its progress: a job seen running
            // without one is about to have it (OnPolicyJobTest met that window and got an empty stream). Bounded, for
            // a job left running by an earlier process.
            if (now.status() == JobStore.Status.RUNNING) {
                long t = System.nanoTime();
                if (runningSince < 0) {
                    runningSince = t;
                } else if (t - runningSince > 5_000_000_000L) {
                    return null;
                }
            }
            Thread.sleep(100);
        }
    }

    private List<JsonElement> events(JobStore.Job j) {
        JobProgress p = runner.progress(j.id());
        List<JsonElement> out = new ArrayList<>();
        if (p != null) {
            out.addAll(p.events());
        } else if (j.result() != null && j.result().has("events")) {
            j.result().getAsJsonArray("events").forEach(out::add);
        } else if (j.status() == JobStore.Status.FAILED && j.error() != null) {
            out.add(Json.tree(new JobProgress.Event("fine_tuning.job.event", "ftevent-" + j.id() + "-error",
                    (j.finishedAt() == null ? j.createdAt() : j.finishedAt()) / 1000, "error", "Job failed: " + j.error(), "message", null)));
        }
        return out;
    }

    private JobStore.Job job(Context ctx) {
        String id = ctx.pathParam("id");
        return jobs.get(id).orElseThrow(() -> new ApiError(404, "invalid_request_error", "No fine-tuning job '" + id + "'.", "id", "job_not_found"));
    }

    private JobJson json(JobStore.Job j) {
        return json(j, j.status().json());
    }

    private JobJson json(JobStore.Job j, String status) {
        JobProgress p = runner.progress(j.id());
        JsonObject counters = p != null && !j.status().finished() ? p.snapshot() : j.result();
        java.util.function.Function<String, JsonElement> counter = k -> counters == null ? null : counters.get(k);
        return new JobJson("fine_tuning.job", j.id(), j.spec().model(), j.spec().method().name, j.createdAt() / 1000,
                j.finishedAt() == null ? null : j.finishedAt() / 1000, status,
                j.adapterVersion() == null ? null : AdapterVersion.of(j.adapterVersion()).modelName(j.spec().model()),
                AdapterVersion.idOrNull(j.adapterVersion()), j.error() == null ? null : new JobError(j.error(), null, null),
                j.spec().hyperparameters(), j.spec().filters(), j.spec().eval(), counter.apply("step"), counter.apply("total_steps"),
                counter.apply("epoch"), counter.apply("trained_tokens"), counter.apply("tokens_per_second"),
                counter.apply("eta_seconds"), counter.apply("loss_curve"), counter.apply("eval"));
    }

    private static Hyperparameters.Method method(RequestBody b) {
        String m;
        JsonElement raw = b.raw("method");
        if (raw != null && raw.isJsonObject()) {
            // OpenAI's shape: {"type": "supervised" | "dpo"}
            String type = b.nested("method").string("type", "supervised");
            m = switch (type) {
                case "supervised" -> "sft";
                case "dpo" -> "dpo";
                default -> type;
            };
        } else {
            m = b.string("method", "sft");
        }
        try {
            return Hyperparameters.Method.parse(m);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid("method", "'method' must be one of sft, dpo, sft+dpo.");
        }
    }

    private static Hyperparameters hyperparameters(RequestBody h, Hyperparameters.Method method) {
        Hyperparameters d = Hyperparameters.defaults(method);
        List<String> targets = h.has("target_modules") ? h.strings("target_modules", 16) : d.targetModules();
        if (targets.isEmpty() || !LoraTrainer.ALL_TARGETS.containsAll(targets)) {
            throw ApiError.invalid("hyperparameters.target_modules", "'hyperparameters.target_modules' must be a non-empty subset of " + LoraTrainer.ALL_TARGETS + ".");
        }
        if (h.has("learn_stops")) {  // replaced on 2026-12-05: silently ignored, false would now read stops as the end
            throw ApiError.invalid("hyperparameters.learn_stops", "'hyperparameters.learn_stops' is replaced by 'hyperparameters.stops': \"end\" (the default), \"ignore\" or \"avoid\".");
        }
        Hyperparameters.Stops stops = stops(h.string("stops", d.stops().name().toLowerCase(java.util.Locale.ROOT)));
        // Stops read as "avoid" teach through the unlikelihood term: without a weight given, it is on for them.
        float unlikelihood = stops == Hyperparameters.Stops.AVOID ? Hyperparameters.AVOID_STOPS_UNLIKELIHOOD_WEIGHT : d.unlikelihoodWeight();
        int checkpointing = checkpointing(h);
        return new Hyperparameters(
                (int) auto(h, "n_epochs", d.nEpochs(), 1, 100),
                (int) auto(h, "batch_size", d.batchSize(), 1, 64),
                (float) h.number("learning_rate", d.learningRate(), 1e-7, 1),
                (int) h.integer("warmup_steps", d.warmupSteps(), 0, 100_000),
                (float) h.number("weight_decay", d.weightDecay(), 0, 1),
                (float) h.number("max_grad_norm", d.maxGradNorm(), 0, 1e6),
                (int) h.integer("lora_rank", d.loraRank(), 1, 256),
                (float) h.number("lora_alpha", d.loraAlpha(), 1e-3, 1e4),
                List.copyOf(targets),
                (float) h.number("beta", d.beta(), 1e-3, 100),
                (float) h.number("nll_weight", d.nllWeight(), 0, 100),
                (float) h.number("dpo_weight", d.dpoWeight(), 0, 100),
                h.number("validation_split", d.validationSplit(), 0, 0.9),
                (int) h.integer("seed", d.seed(), 0, Integer.MAX_VALUE),
                checkpointing < 0,
                (float) h.number("kl_weight", d.klWeight(), 0, 1000),
                (int) h.integer("replay", d.replay(), 0, 1000),
                h.bool("early_stopping", d.earlyStopping()),
                (int) h.integer("on_policy", d.onPolicy(), 0, 100),
                (float) h.number("adam_epsilon", d.adamEpsilon(), 1e-12, 1),
                (float) h.number("unlikelihood_weight", unlikelihood, 0, 100),
                (float) h.number("guard_weight", d.guardWeight(), 0, 1000),
                (int) auto(h, "lora_layers", d.loraLayers(), 0, 1000),
                stops,
                (float) h.number("ema_decay", d.emaDecay(), 0, 0.999),
                Math.max(0, checkpointing),
                (float) h.number("first_token_weight", d.firstTokenWeight(), 0, 100));
    }

    /**
     * {@code activation_checkpointing}: false or absent 0, true -1 (every block), N from 2 that many runs of blocks. A
     * job shows N as {@code checkpoint_segments} (beside {@code activation_checkpointing: false}) and takes that field
     * back too, so that a job's hyperparameters sent again ask for the same.
     */
    private static int checkpointing(RequestBody h) {
        JsonElement e = h.raw("activation_checkpointing");
        if (e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean()) {
            return e.getAsBoolean() ? -1 : runs(h, "checkpoint_segments", true);
        }
        return e != null ? runs(h, "activation_checkpointing", false) : runs(h, "checkpoint_segments", true);
    }

    private static int runs(RequestBody h, String name, boolean zeroAllowed) {
        String message = "'hyperparameters." + name + "' must be " + (zeroAllowed ? "0 or " : "false, true (every block) or ")
                + "a number of runs of blocks from 2 to 1000.";
        long n;
        try {
            n = h.integer(name, 0, 0, 1000);
        } catch (ApiError notAnInteger) {
            throw ApiError.invalid("hyperparameters." + name, message);
        }
        if (n == 1 || (n == 0 && !zeroAllowed)) {
            throw ApiError.invalid("hyperparameters." + name, message);
        }
        return (int) n;
    }

    private static Hyperparameters.Stops stops(String s) {
        try {
            return Hyperparameters.Stops.parse(s);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid("hyperparameters.stops", "'hyperparameters.stops' must be one of ignore, end, avoid.");
        }
    }

    /** An integer, or "auto" (OpenAI's word for the default). */
    private static long auto(RequestBody h, String name, long fallback, long min, long max) {
        JsonElement e = h.raw(name);
        if (e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString() && e.getAsString().equals("auto")) {
            return fallback;
        }
        return h.integer(name, fallback, min, max);
    }

    private static JobSpec.Filters filters(RequestBody f) {
        return new JobSpec.Filters(f.string("session_id", null), f.string("tag", null),
                f.has("since") ? f.integer("since", 0, 0, Long.MAX_VALUE) : null,
                f.has("until") ? f.integer("until", 0, 0, Long.MAX_VALUE) : null);
    }

    private static EvalGate.Settings eval(RequestBody e) {
        EvalGate.Settings d = EvalGate.Settings.defaults();
        String canary = e.string("canary", d.canary());
        if (canary.isBlank()) {
            throw ApiError.invalid("eval.canary", "'eval.canary' must be a non-empty text.");
        }
        String scope = e.string("scope", d.scope());
        if (!scope.equals(EvalGate.Settings.SCOPE_STEERED) && !scope.equals(EvalGate.Settings.SCOPE_ALL)) {
            throw ApiError.invalid("eval.scope", "'eval.scope' must be \"steered\" (serve the prompts like the steered ones) or \"all\".");
        }
        return new EvalGate.Settings(e.number("max_drift", d.maxDrift(), 0, 1000), e.bool("auto_activate", d.autoActivate()), canary,
                e.number("max_changed", d.maxChanged(), 0, 1), e.number("max_degenerate", d.maxDegenerate(), 0, 1), scope);
    }
}
