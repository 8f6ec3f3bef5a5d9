package dev.steer.adapters;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import dev.steer.db.Database;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Adapter versions on disk and in SQLite: each version is a GGUF file in the adapter directory plus a row with its
 * lineage (base model and its hash, the steers and hyperparameters it came from, its metrics and gate verdict).
 *
 * <p>Consistency: a file is complete before it gets a name the registry uses (the trainer writes and renames it,
 * {@link #register} moves it into place atomically), and a row is inserted only after that. At open, files without
 * a row (a crash between the two) are deleted and rows without a file are dropped, so the registry never names a
 * half-written adapter. Which version serves is a history of activations: activating pushes, {@link #rollback} pops.
 */
public final class AdapterRegistry implements AutoCloseable {
    private static final Gson GSON = new Gson();
    private static final Logger LOG = LoggerFactory.getLogger(AdapterRegistry.class);

    public record Version(int version, String baseModel, String baseSha256, String file, String jobId, List<String> steerIds,
                          List<String> heldOutIds, JsonObject hyperparameters, JsonObject metrics, String gate, long createdAt) {
        public AdapterVersion name() {
            return AdapterVersion.of(version);
        }

        /** The name clients use after "{model}@": "v3". */
        public String id() {
            return name().id();
        }
    }

    /** What a new version is made of; the registry gives it a number and a file name. */
    public record Lineage(String baseModel, String baseSha256, String jobId, List<String> steerIds, List<String> heldOutIds,
                          JsonObject hyperparameters, JsonObject metrics, String gate) {}

    private final Connection db;
    private final Path dir;

    private AdapterRegistry(Connection db, Path dir) {
        this.db = db;
        this.dir = dir;
    }

    public static AdapterRegistry open(Path dbFile, Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the adapter directory " + dir, e);
        }
        AdapterRegistry r = new AdapterRegistry(Database.connect(dbFile), dir);
        r.reconcile();
        return r;
    }

    public Path dir() {
        return dir;
    }

    public Path file(Version v) {
        return dir.resolve(v.file());
    }

    /** Moves the complete adapter file {@code file} into the registry as the next version, serving every prompt. */
    public synchronized Version register(Path file, Lineage l) {
        return register(file, l, null);
    }

    /**
     * Moves the complete adapter file {@code file} into the registry as the next version, which serves the prompts of
     * {@code scope} when clients name the model plainly (null: every prompt).
     */
    public synchronized Version register(Path file, Lineage l, Scope scope) {
        int version = nextVersion();
        String name = AdapterVersion.of(version).fileName();
        try {
            Files.move(file, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the adapter into " + dir, e);
        }
        long now = System.currentTimeMillis();
        Database.inTransaction(db, () -> {  // the row and the counter at once
            update("INSERT INTO adapters (version, base_model, base_sha256, file, job_id, steer_ids, held_out_ids, hyperparameters,"
                            + " metrics, gate, created_at, scope) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    version, l.baseModel(), l.baseSha256(), name, l.jobId(), GSON.toJson(l.steerIds()), GSON.toJson(l.heldOutIds()),
                    GSON.toJson(l.hyperparameters()), GSON.toJson(l.metrics()), l.gate(), now, scope == null ? null : scope.toJson());
            update("UPDATE adapter_counter SET last = MAX(last, ?)", version);
        });
        return get(version).orElseThrow();
    }

    /** Stores the gate's verdict and the job's metrics of a version registered before its check ran. */
    public synchronized void setResult(int version, JsonObject metrics, String gate) {
        update("UPDATE adapters SET metrics = ?, gate = ? WHERE version = ?", GSON.toJson(metrics), gate, version);
    }

    /** The prompts {@code version} serves under the model's plain name; empty: every prompt (or no such version). */
    public synchronized Optional<Scope> scope(int version) {
        List<String> r = Database.query(db, "SELECT scope FROM adapters WHERE version = ? AND scope IS NOT NULL", List.of(version),
                x -> x.getString("scope"));
        return r.isEmpty() ? Optional.empty() : Optional.of(Scope.fromJson(r.get(0)));
    }

    public synchronized List<Version> list() {
        return query("SELECT " + VERSION_COLUMNS + " FROM adapters ORDER BY version", List.of());
    }

    public synchronized Optional<Version> get(int version) {
        List<Version> r = query("SELECT " + VERSION_COLUMNS + " FROM adapters WHERE version = ?", List.of(version));
        return r.isEmpty() ? Optional.empty() : Optional.of(r.get(0));
    }

    /** Removes a version that does not serve now: its row, then its file. */
    public synchronized void delete(int version) {
        Integer active = active();
        if (active != null && active == version) {
            throw new IllegalStateException(AdapterVersion.of(version) + " is serving; activate another version or roll back first");
        }
        Optional<Version> v = get(version);
        if (v.isEmpty()) {
            return;
        }
        update("DELETE FROM adapters WHERE version = ?", version);
        try {
            Files.deleteIfExists(file(v.get()));
        } catch (IOException e) {
            LOG.warn("could not delete {}: {}", file(v.get()), e.getMessage());
        }
    }

    /** The version serving now, null for the base model alone. */
    public synchronized Integer active() {
        List<Integer> stack = stack();
        return stack.isEmpty() ? null : stack.get(stack.size() - 1);
    }

    /** Makes {@code version} (null: the base model) the one that serves. */
    public synchronized void activate(Integer version, String reason) {
        if (version != null && get(version).isEmpty()) {
            throw new IllegalArgumentException("no adapter v" + version);
        }
        update("INSERT INTO activations (version, reason, created_at) VALUES (?,?,?)", version, reason, System.currentTimeMillis());
    }

    /** The version a {@link #rollback} would return to (null: the base model), without rolling back. */
    public synchronized Integer rollbackTarget() {
        List<Integer> stack = stack();
        if (stack.isEmpty()) {
            throw new IllegalStateException("the base model is serving and nothing was activated before it; there is nothing to roll back");
        }
        return stack.size() == 1 ? null : stack.get(stack.size() - 2);
    }

    /** Returns to the version that served before the current one, and returns that (null: the base model). */
    public synchronized Integer rollback() {
        Integer target = rollbackTarget();  // throws when there is nothing to roll back to
        // A rollback row pops the history's last entry, which may name a version deleted since (the stack leaves
        // those out): pop until what serves is the target, so the answer always equals rollbackTarget's.
        for (int guard = 0; guard < 10_000; guard++) {
            update("INSERT INTO activations (version, reason, created_at) VALUES (NULL, 'rollback', ?)", System.currentTimeMillis());
            if (Objects.equals(active(), target)) {
                return target;
            }
        }
        throw new IllegalStateException("adapter registry: the activation history does not roll back to v" + target);
    }

    /**
     * Replays the activation history into a stack (null entries: the base model was activated explicitly):
     * activations push, rollbacks pop. Versions deleted since are left out, so a rollback never lands on a
     * version that is gone.
     */
    private List<Integer> stack() {
        Set<Integer> exist = new HashSet<>();
        list().forEach(v -> exist.add(v.version()));
        List<Integer> stack = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement("SELECT version, reason FROM activations ORDER BY id");
             ResultSet r = p.executeQuery()) {
            while (r.next()) {
                int v = r.getInt(1);
                Integer version = r.wasNull() ? null : v;
                if (r.getString(2).equals("rollback")) {
                    if (!stack.isEmpty()) {
                        stack.remove(stack.size() - 1);
                    }
                } else {
                    stack.add(version);
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException("adapter registry: " + e.getMessage(), e);
        }
        stack.removeIf(v -> v != null && !exist.contains(v));
        return stack;
    }

    private int nextVersion() {
        // Past the last number ever given (V5__adapter_counter.sql): a deleted version's number is never given again.
        try (PreparedStatement p = db.prepareStatement("SELECT last + 1 FROM adapter_counter");
             ResultSet r = p.executeQuery()) {
            r.next();
            int next = r.getInt(1);
            // never reuse the number of a file left on disk
            while (Files.exists(dir.resolve(AdapterVersion.of(next).fileName()))) {
                next++;
            }
            return next;
        } catch (SQLException e) {
            throw new IllegalStateException("adapter registry: " + e.getMessage(), e);
        }
    }

    /** Deletes files no row names (and temporary files); drops rows whose file is gone. */
    private synchronized void reconcile() {
        // Registered for the gate and never checked (the server stopped during the job): as when the gate fails to run.
        update("UPDATE adapters SET gate = 'error' WHERE gate = 'pending'");
        Set<String> named = new HashSet<>();
        for (Version v : list()) {
            if (Files.isRegularFile(file(v))) {
                named.add(v.file());
            } else {
                LOG.warn("adapter {} has no file {}; dropping it from the registry", v.id(), file(v));
                update("DELETE FROM adapters WHERE version = ?", v.version());
            }
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path f : files) {
                if (!named.contains(f.getFileName().toString()) && Files.isRegularFile(f)) {
                    LOG.warn("deleting {}, an adapter file no registry version owns (an interrupted job)", f);
                    Files.delete(f);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the adapter directory " + dir, e);
        }
    }

    private void update(String sql, Object... args) {
        Database.update(db, sql, args);
    }

    /** A version's columns, not its scope (the prompts' tokens: large, and read only by {@link #scope}). */
    private static final String VERSION_COLUMNS = "version, base_model, base_sha256, file, job_id, steer_ids, held_out_ids, hyperparameters,"
            + " metrics, gate, created_at";

    private List<Version> query(String sql, List<Object> args) {
        return Database.query(db, sql, args, r -> new Version(r.getInt("version"), r.getString("base_model"),
                r.getString("base_sha256"), r.getString("file"), r.getString("job_id"), strings(r.getString("steer_ids")),
                strings(r.getString("held_out_ids")), GSON.fromJson(r.getString("hyperparameters"), JsonObject.class),
                GSON.fromJson(r.getString("metrics"), JsonObject.class), r.getString("gate"), r.getLong("created_at")));
    }

    private static List<String> strings(String json) {
        return List.of(GSON.fromJson(json, String[].class));
    }

    @Override
    public synchronized void close() {
        Database.close(db);
    }
}
