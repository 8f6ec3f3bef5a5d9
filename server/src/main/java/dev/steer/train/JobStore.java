package dev.steer.train;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import dev.steer.db.Database;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;

/** Fine-tuning jobs in SQLite: a job is queued durably before its id is returned, and its end is recorded. */
public final class JobStore implements AutoCloseable {
    private static final Gson GSON = new Gson();

    public enum Status {
        QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

        public String json() {
            return name().toLowerCase();
        }

        public boolean finished() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    /**
     * @param adapterVersion the version the job registered, if it got that far
     * @param result         JSON: loss curve, counts, eval report, events (once finished)
     */
    public record Job(String id, JobSpec spec, Status status, String error, Integer adapterVersion, JsonObject result,
                      long createdAt, Long startedAt, Long finishedAt) {}

    private final Connection db;

    private JobStore(Connection db) {
        this.db = db;
    }

    public static JobStore open(Path file) {
        return new JobStore(Database.connect(file));
    }

    public synchronized Job insert(String id, JobSpec spec) {
        update("INSERT INTO jobs (id, model, method, hyperparameters, filters, eval, status, created_at) VALUES (?,?,?,?,?,?,?,?)",
                id, spec.model(), spec.method().name, GSON.toJson(spec.hyperparameters()), GSON.toJson(spec.filters()),
                GSON.toJson(spec.eval()), Status.QUEUED.json(), System.currentTimeMillis());
        return get(id).orElseThrow();
    }

    public synchronized Optional<Job> get(String id) {
        List<Job> r = query("SELECT * FROM jobs WHERE id = ?", id);
        return r.isEmpty() ? Optional.empty() : Optional.of(r.get(0));
    }

    /** Newest first, as OpenAI lists them. */
    public synchronized List<Job> list() {
        return query("SELECT * FROM jobs ORDER BY created_at DESC, id DESC");
    }

    public synchronized Optional<Job> nextQueued() {
        List<Job> r = query("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1");
        return r.isEmpty() ? Optional.empty() : Optional.of(r.get(0));
    }

    /** queued → running; false if the job was not queued (cancelled meanwhile). */
    public synchronized boolean start(String id) {
        return update("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'",
                System.currentTimeMillis(), id) > 0;
    }

    /** queued → cancelled; false if it was not queued. */
    public synchronized boolean cancelQueued(String id) {
        return update("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'queued'",
                System.currentTimeMillis(), id) > 0;
    }

    public synchronized void finish(String id, Status status, String error, Integer adapterVersion, JsonObject result) {
        update("UPDATE jobs SET status = ?, error = ?, adapter_version = ?, result = ?, finished_at = ? WHERE id = ?",
                status.json(), error, adapterVersion, result == null ? null : GSON.toJson(result), System.currentTimeMillis(), id);
    }

    /** At startup: a job still marked running was cut off by a crash or a kill. Returns how many. */
    public synchronized int failInterrupted() {
        // A job stopped after registering its adapter (before the gate's verdict, or even after activating it) still
        // names that adapter: the registry and the server's active version may hold it (jobs and adapters share the
        // database file).
        return update("UPDATE jobs SET status = 'failed', error = 'the server stopped while the job was running',"
                + " adapter_version = (SELECT MAX(version) FROM adapters WHERE job_id = jobs.id),"
                + " finished_at = ? WHERE status = 'running'", System.currentTimeMillis());
    }

    private int update(String sql, Object... args) {
        return Database.update(db, sql, args);
    }

    private List<Job> query(String sql, Object... args) {
        return Database.query(db, sql, List.of(args), JobStore::read);
    }

    private static Job read(ResultSet r) throws SQLException {
        JobSpec spec = new JobSpec(r.getString("model"), Hyperparameters.Method.parse(r.getString("method")),
                GSON.fromJson(r.getString("hyperparameters"), Hyperparameters.class),
                GSON.fromJson(r.getString("filters"), JobSpec.Filters.class),
                GSON.fromJson(r.getString("eval"), EvalGate.Settings.class));
        int v = r.getInt("adapter_version");
        Integer version = r.wasNull() ? null : v;
        long started = r.getLong("started_at");
        Long startedAt = r.wasNull() ? null : started;
        long finished = r.getLong("finished_at");
        Long finishedAt = r.wasNull() ? null : finished;
        String result = r.getString("result");
        return new Job(r.getString("id"), spec, Status.valueOf(r.getString("status").toUpperCase()),
                r.getString("error"), version, result == null ? null : GSON.fromJson(result, JsonObject.class),
                r.getLong("created_at"), startedAt, finishedAt);
    }

    @Override
    public synchronized void close() {
        Database.close(db);
    }
}
