package dev.steer;

import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.ServedAdapters;
import dev.steer.engine.Engine;
import dev.steer.http.ApiServer;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import dev.steer.steer.Sessions;
import dev.steer.steer.SteerStore;
import dev.steer.train.JobRunner;
import dev.steer.train.JobStore;
import java.nio.file.Path;
import java.util.function.LongSupplier;

/**
 * One server: every part assembled in data-flow order (engine, steer store, adapters, training jobs, HTTP) and
 * closed in reverse. The model is the caller's; it must have been loaded without CPU weight repacking when jobs
 * are to train on it.
 */
public final class Server implements AutoCloseable {
    /**
     * @param modelSha256 of the model file: adapters record the base they were trained on, and only serve on it
     * @param database    SQLite file of steers, jobs and adapter versions
     * @param adapterDir  where adapter versions live
     * @param chatTemplate a Jinja template to use instead of the model's, or null
     * @param trainThreads CPU threads a training job uses, apart from serving's; 0: half the cores while serving, all
     *                     while nothing is served ({@link JobRunner.Threads#of})
     * @param maxSessions  steerable sessions held at most (see {@link Sessions})
     * @param keepAccepted streamed answers the person let run that are kept, the newest (0: none; {@link SteerStore#insertAccepted})
     * @param prepareJobs  generate what a first job needs before it is asked for, once steers exist ({@link JobRunner#prepare});
     *                     tests that count the engine's work turn it off
     */
    public record Config(String modelSha256, Path database, Path adapterDir, long sessionTtlMillis, String chatTemplate,
                         int trainThreads, Engine.Config engine, ApiServer.Options api, int maxSessions, int keepAccepted,
                         boolean prepareJobs) {}

    public final Engine engine;
    public final ChatTemplates templates;
    public final Sessions sessions;
    public final SteerStore steers;
    public final AdapterRegistry adapters;
    public final ServedAdapters served;
    public final JobStore jobs;
    public final JobRunner training;
    public final ApiServer api;

    public Server(LlamaModel model, Config c) {
        this(model, c, System::currentTimeMillis);
    }

    /** @param clock epoch milliseconds that sessions expire by (tests move it instead of sleeping) */
    public Server(LlamaModel model, Config c, LongSupplier clock) {
        engine = new Engine(model, c.engine());
        templates = ChatTemplates.forModel(model, c.chatTemplate());
        sessions = new Sessions(c.sessionTtlMillis(), c.maxSessions(), clock);
        steers = SteerStore.open(c.database(), c.keepAccepted());
        adapters = AdapterRegistry.open(c.database(), c.adapterDir());
        served = new ServedAdapters(engine, adapters, c.api().modelId(), c.modelSha256(), c.api().decodeStepTimeout());
        jobs = JobStore.open(c.database());
        training = new JobRunner(jobs, steers, adapters, served, engine, templates, c.modelSha256(),
                JobRunner.Threads.of(c.trainThreads(), Runtime.getRuntime().availableProcessors()));
        api = ApiServer.start(c.api(), new ApiServer.Services(engine, templates, sessions, steers, served, adapters, jobs, training));
        if (c.prepareJobs()) {
            // The base model's answers a job needs, generated before the first job while a person steers (JobRunner.prepare).
            String modelId = c.api().modelId();
            steers.onRecorded(() -> training.prepare(modelId));
            if (steers.hasRecords(modelId)) {
                training.prepare(modelId);
            }
        }
    }

    public int port() {
        return api.port();
    }

    @Override
    public void close() {
        api.stop();
        training.close();
        engine.close();
        served.closeAll();
        templates.close();
        jobs.close();
        adapters.close();
        steers.close();
    }
}
