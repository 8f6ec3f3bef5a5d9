package dev.steer.steer;

import com.google.gson.Gson;
import com.google.gson.reflect.TypeToken;
import dev.steer.db.Database;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Steer records in SQLite (WAL, synchronous=FULL): {@link #insert} returns only once the record is on disk, so an
 * acknowledged steer survives a crash ({@link Database}). One connection, used under this object's lock, which a
 * caller may hold for long (a large list or export): the decode thread hands its writes to {@link #writer} instead.
 */
public final class SteerStore implements AutoCloseable {
    private static final Gson GSON = new Gson();

    /** Which records to list or export; null fields do not filter. Times are epoch milliseconds. */
    public record Filter(String sessionId, String tag, String model, Long since, Long until, boolean includeExcluded) {
        public static Filter all() {
            return new Filter(null, null, null, null, null, true);
        }

        public static Filter forTraining() {
            return new Filter(null, null, null, null, null, false);
        }
    }

    /** Accepted answers kept by default (--keep-accepted): a job reads at most half its replay set (16) of them. */
    public static final int DEFAULT_KEEP_ACCEPTED = 256;

    private final Connection db;
    private final SteerWriter writer = new SteerWriter();
    private final int keepAccepted;
    private volatile Runnable onRecorded = () -> { };

    private SteerStore(Connection db, int keepAccepted) {
        this.db = db;
        this.keepAccepted = keepAccepted;
    }

    /** The thread that runs this store's writes for a caller that must not wait on its lock: the decode thread. */
    public SteerWriter writer() {
        return writer;
    }

    public static SteerStore open(Path file) {
        return open(file, DEFAULT_KEEP_ACCEPTED);
    }

    /** @param keepAccepted accepted answers kept, the newest; 0 records none and deletes those stored */
    public static SteerStore open(Path file, int keepAccepted) {
        if (keepAccepted < 0) {
            throw new IllegalArgumentException("keepAccepted must be at least 0, not " + keepAccepted);
        }
        SteerStore s = new SteerStore(Database.connect(file), keepAccepted);
        s.trimAccepted();
        return s;
    }

    /** Whether answers the person let run are recorded at all ({@link #insertAccepted}). */
    public boolean keepsAccepted() {
        return keepAccepted > 0;
    }

    /**
     * Stores a record. Its request and prompt are stored once per session (the first record of a session brings
     * them; later ones share them): a session's request never changes, and it can be megabytes.
     */
    public void insert(SteerRecord r) {
        synchronized (this) {
            Database.inTransaction(db, () -> insertRecord(r));
        }
        onRecorded.run();
    }

    /**
     * What to do after each record is stored or a steer's continuation written (on the storing thread, outside the
     * store's lock; it must return at once): the server prepares its next job then ({@code JobRunner#prepare}). One
     * listener; a later call replaces it.
     */
    public void onRecorded(Runnable listener) {
        onRecorded = listener;
    }

    /** Whether any steer or stop of {@code model} is stored. */
    public synchronized boolean hasRecords(String model) {
        return !Database.query(db, "SELECT 1 FROM steers WHERE model = ? LIMIT 1", List.of(model), x -> 1).isEmpty();
    }

    /**
     * Stores a steer that cuts an answer already steered ({@code previous}, or null for its first): the previous
     * steer's continuation, up to this steer, and this record, in one transaction.
     */
    public void insertAfter(String previous, int[] continuation, String continuationText, SteerRecord r) {
        synchronized (this) {
            Database.inTransaction(db, () -> {
                if (previous != null) {
                    setContinuationRow(previous, continuation, continuationText);
                }
                insertRecord(r);
            });
        }
        onRecorded.run();
    }

    private void insertRecord(SteerRecord r) {
        if (Database.query(db, "SELECT 1 FROM session_requests WHERE session_id = ?", List.of(r.sessionId()), x -> 1).isEmpty()) {
            // In the record's transaction (insert), so never a record without its request.
            update("INSERT INTO session_requests (session_id, request_json, prompt_tokens) VALUES (?,?,?)",
                    r.sessionId(), r.requestJson(), ints(r.promptTokens()));
        }
        // A steered or stopped answer is no longer one the person let run (a finished answer can be steered later).
        update("DELETE FROM accepted_answers WHERE session_id = ?", r.sessionId());
        String sql = "INSERT INTO steers (id, session_id, kind, model, adapter_version, at_token,"
                + " accepted_tokens, rejected_tokens, correction_tokens, correction_text, accepted_text, rejected_text,"
                + " fork_top_logprobs, continuation_tokens, continuation_text, excluded, created_at, updated_at)"
                + " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
        try (PreparedStatement p = db.prepareStatement(sql)) {
            int i = 1;
            p.setString(i++, r.id());
            p.setString(i++, r.sessionId());
            p.setString(i++, r.kind());
            p.setString(i++, r.model());
            p.setString(i++, r.adapterVersion());
            p.setInt(i++, r.at());
            p.setString(i++, ints(r.acceptedTokens()));
            p.setString(i++, ints(r.rejectedTokens()));
            p.setString(i++, ints(r.correctionTokens()));
            p.setString(i++, r.correctionText());
            p.setString(i++, r.acceptedText());
            p.setString(i++, r.rejectedText());
            p.setString(i++, r.forkTopLogprobs() == null ? null : GSON.toJson(r.forkTopLogprobs()));
            p.setString(i++, r.continuationTokens() == null ? null : ints(r.continuationTokens()));
            p.setString(i++, r.continuationText());
            p.setInt(i++, r.excluded() ? 1 : 0);
            p.setLong(i++, r.createdAt());
            p.setLong(i, r.updatedAt());
            p.executeUpdate();
            setTags(r.id(), r.tags());
        } catch (SQLException e) {
            throw new IllegalStateException("could not store steer " + r.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * A streamed answer that finished without a steer or stop: the person let it run. {@code outputTokens} ends with
     * the end-of-generation token when the model ended it. Nothing is stored when the session already has a record
     * (a stop during the answer is written before its end), nor when the store keeps none; past the newest
     * {@code --keep-accepted} the oldest are deleted.
     */
    public synchronized void insertAccepted(Accepted a) {
        if (!keepsAccepted()) {
            return;
        }
        Database.inTransaction(db, () -> {
            update("INSERT OR IGNORE INTO accepted_answers (session_id, model, adapter_version, prompt_tokens, output_tokens, created_at)"
                            + " SELECT ?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM steers WHERE session_id = ?)",
                    a.sessionId(), a.model(), a.adapterVersion(), ints(a.promptTokens()), ints(a.outputTokens()), a.createdAt(),
                    a.sessionId());
            trimAccepted();
        });
    }

    /**
     * Writes waiting for the writer beyond which an accepted answer is not recorded: nothing waits on such a write,
     * so while a long export holds the store's lock every finished answer would otherwise add one (with its prompt)
     * to the queue; steers and their continuations are never dropped.
     */
    public static final int ACCEPTED_BACKLOG = 64;

    /** Deletes all but the newest {@code --keep-accepted} accepted answers. */
    private synchronized void trimAccepted() {
        update("DELETE FROM accepted_answers WHERE session_id NOT IN"
                + " (SELECT session_id FROM accepted_answers ORDER BY created_at DESC, session_id DESC LIMIT ?)", keepAccepted);
    }

    /** The newest {@code limit} accepted answers of {@code model}, newest first. */
    public synchronized List<Accepted> accepted(String model, int limit) {
        return accepted("model = ?", model, limit);
    }

    /**
     * The newest {@code limit} accepted answers of {@code model} that the base model wrote (no adapter served them),
     * newest first: a job keeps the adapter at the base model on them, which an answer an adapter wrote is not.
     */
    public synchronized List<Accepted> acceptedFromBase(String model, int limit) {
        return accepted("model = ? AND adapter_version IS NULL", model, limit);
    }

    private List<Accepted> accepted(String where, String model, int limit) {
        return Database.query(db, "SELECT * FROM accepted_answers WHERE " + where + " ORDER BY created_at DESC, session_id DESC LIMIT ?",
                List.of(model, limit), r -> new Accepted(r.getString("session_id"), r.getString("model"),
                        r.getString("adapter_version"), ints(r.getString("prompt_tokens")), ints(r.getString("output_tokens")),
                        r.getLong("created_at")));
    }

    /** Records what the model generated after a steer (the answer as the person left it is complete then). */
    public void setContinuation(String id, int[] tokens, String text) {
        synchronized (this) {
            setContinuationRow(id, tokens, text);
        }
        onRecorded.run();
    }

    private void setContinuationRow(String id, int[] tokens, String text) {
        update("UPDATE steers SET continuation_tokens = ?, continuation_text = ?, updated_at = ? WHERE id = ?",
                ints(tokens), text, System.currentTimeMillis(), id);
    }

    public synchronized boolean setExcluded(String id, boolean excluded) {
        return update("UPDATE steers SET excluded = ?, updated_at = ? WHERE id = ?", excluded ? 1 : 0, System.currentTimeMillis(), id) > 0;
    }

    /**
     * Adds tags to a record: each new one inserted, in one transaction, and none deleted. (Until 2026-12-06 the set was
     * rewritten, a delete and then an insert per tag, each committed alone: a kill in between lost tags acknowledged
     * before, which CrashDurabilityTest caught.)
     */
    public synchronized boolean addTags(String id, Set<String> tags) {
        if (get(id).isEmpty()) {
            return false;
        }
        Database.inTransaction(db, () -> {
            for (String t : tags) {
                update("INSERT OR IGNORE INTO steer_tags(steer_id, tag) VALUES (?, ?)", id, t);
            }
        });
        return true;
    }

    /** Deletes a record, and its session's request once no record of that session is left. */
    public synchronized boolean delete(String id) {
        Optional<SteerRecord> r = get(id);
        if (r.isEmpty()) {
            return false;
        }
        Database.inTransaction(db, () -> {  // the record (its tags by cascade) and, when it was the last, its request
            update("DELETE FROM steers WHERE id = ?", id);
            update("DELETE FROM session_requests WHERE session_id = ? AND NOT EXISTS (SELECT 1 FROM steers WHERE session_id = ?)",
                    r.get().sessionId(), r.get().sessionId());
        });
        return true;
    }

    /** A record with its session's request. */
    private static final String SELECT = "SELECT * FROM steers JOIN session_requests USING (session_id)";

    public synchronized Optional<SteerRecord> get(String id) {
        List<SteerRecord> r = query(SELECT + " WHERE id = ?", List.of(id));
        return r.isEmpty() ? Optional.empty() : Optional.of(r.get(0));
    }

    /** Records matching the filter, oldest first. */
    public synchronized List<SteerRecord> list(Filter f) {
        StringBuilder sql = new StringBuilder(SELECT + " WHERE 1=1");
        List<Object> args = new ArrayList<>();
        if (f.sessionId() != null) {
            sql.append(" AND session_id = ?");
            args.add(f.sessionId());
        }
        if (f.model() != null) {
            sql.append(" AND model = ?");
            args.add(f.model());
        }
        if (f.since() != null) {
            sql.append(" AND created_at >= ?");
            args.add(f.since());
        }
        if (f.until() != null) {
            sql.append(" AND created_at < ?");
            args.add(f.until());
        }
        if (f.tag() != null) {
            sql.append(" AND id IN (SELECT steer_id FROM steer_tags WHERE tag = ?)");
            args.add(f.tag());
        }
        if (!f.includeExcluded()) {
            sql.append(" AND excluded = 0");
        }
        sql.append(" ORDER BY created_at, id");
        return query(sql.toString(), args);
    }

    private void setTags(String id, Set<String> tags) {
        update("DELETE FROM steer_tags WHERE steer_id = ?", id);
        for (String t : tags) {
            update("INSERT INTO steer_tags(steer_id, tag) VALUES (?, ?)", id, t);
        }
    }

    private int update(String sql, Object... args) {
        return Database.update(db, sql, args);
    }

    private List<SteerRecord> query(String sql, List<Object> args) {
        return Database.query(db, sql, args, this::read);
    }

    private SteerRecord read(ResultSet r) throws SQLException {
        String id = r.getString("id");
        Set<String> tags = new LinkedHashSet<>();
        try (PreparedStatement p = db.prepareStatement("SELECT tag FROM steer_tags WHERE steer_id = ? ORDER BY tag")) {
            p.setString(1, id);
            try (ResultSet t = p.executeQuery()) {
                while (t.next()) {
                    tags.add(t.getString(1));
                }
            }
        }
        String fork = r.getString("fork_top_logprobs");
        String cont = r.getString("continuation_tokens");
        return new SteerRecord(id, r.getString("session_id"), r.getString("kind"), r.getString("model"),
                r.getString("adapter_version"), r.getString("request_json"), ints(r.getString("prompt_tokens")),
                r.getInt("at_token"), ints(r.getString("accepted_tokens")), ints(r.getString("rejected_tokens")),
                ints(r.getString("correction_tokens")), r.getString("correction_text"), r.getString("accepted_text"),
                r.getString("rejected_text"),
                fork == null ? null : GSON.fromJson(fork, new TypeToken<List<SteerRecord.TokenLogprob>>() {}.getType()),
                cont == null ? null : ints(cont), r.getString("continuation_text"), r.getInt("excluded") != 0,
                Set.copyOf(tags), r.getLong("created_at"), r.getLong("updated_at"));
    }

    private static String ints(int[] a) {
        return Arrays.toString(a).replace(" ", "");
    }

    private static int[] ints(String json) {
        return GSON.fromJson(json, int[].class);
    }

    /** Runs the writes handed to {@link #writer} first; not under the lock, which those writes need. */
    @Override
    public void close() {
        writer.close();
        synchronized (this) {
            Database.close(db);
        }
    }
}
