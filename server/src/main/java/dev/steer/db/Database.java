package dev.steer.db;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.sqlite.SQLiteConfig;

/**
 * The server's one SQLite file (steers, training jobs, adapter versions). WAL with synchronous=FULL: a committed
 * write is on disk, so what the server acknowledged survives a crash. Schema changes are numbered migrations
 * (resources migrations/V*.sql, split by {@link SqlScript}), applied when a connection opens; the version reached is
 * {@code PRAGMA user_version}. Each store holds its own connection and lock;
 * SQLite serializes writers across them (transactions take the write lock when they begin, and wait up to
 * busy_timeout for it).
 */
public final class Database {
    private static final String[] MIGRATIONS = {"V1__steers.sql", "V2__jobs_adapters.sql", "V3__session_requests.sql",
            "V4__accepted_answers.sql", "V5__adapter_counter.sql", "V6__adapter_scope.sql"};

    private Database() {}

    /** A connection to {@code file}, created and migrated to the current schema if needed. */
    public static synchronized Connection connect(Path file) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            // Transactions begin IMMEDIATE: one that read first and wrote after another connection's commit (a steer's
            // insert checks its request row, then writes) would otherwise fail at once with SQLITE_BUSY, which
            // busy_timeout does not wait out. Taking the write lock at BEGIN waits for it instead.
            SQLiteConfig config = new SQLiteConfig();
            config.setTransactionMode(SQLiteConfig.TransactionMode.IMMEDIATE);
            Connection db = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath(), config.toProperties());
            try (Statement s = db.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=FULL");
                s.execute("PRAGMA foreign_keys=ON");
                s.execute("PRAGMA busy_timeout=5000");
            }
            migrate(db, MIGRATIONS.length);
            return db;
        } catch (SQLException | IOException e) {
            throw new IllegalStateException("cannot open the database at " + file + ": " + e.getMessage(), e);
        }
    }

    /** The schema version this build migrates to: the number of migrations. */
    public static int currentVersion() {
        return MIGRATIONS.length;
    }

    /**
     * Brings {@code db} from its version to {@code target}, one migration per transaction. The version is SQLite's
     * {@code PRAGMA user_version} (0 in a new file), set in the same transaction as the migration's statements, so a
     * migration is applied entirely or not at all. A database at the target already is left alone.
     */
    static void migrate(Connection db, int target) throws SQLException {
        int version = version(db);
        if (version > MIGRATIONS.length) {
            throw new SQLException("the database is at schema version " + version + ", newer than this server's "
                    + MIGRATIONS.length + ": it was written by a newer Steer");
        }
        try (Statement s = db.createStatement()) {
            for (int v = version; v < target; v++) {
                db.setAutoCommit(false);
                try {
                    for (String stmt : SqlScript.statements(resource("migrations/" + MIGRATIONS[v]))) {
                        s.execute(stmt);
                    }
                    s.execute("PRAGMA user_version = " + (v + 1));
                    db.commit();
                } catch (SQLException | RuntimeException e) {
                    db.rollback();
                    throw e instanceof SQLException q ? new SQLException("migration " + MIGRATIONS[v] + ": " + q.getMessage(), q)
                            : new SQLException("migration " + MIGRATIONS[v] + ": " + e.getMessage(), e);
                } finally {
                    db.setAutoCommit(true);
                }
            }
        }
    }

    /**
     * The schema version: {@code PRAGMA user_version}. Databases written before it was used counted their
     * migrations in a {@code schema_version} table; that count is taken over once (the table stays, unused).
     */
    static int version(Connection db) throws SQLException {
        try (Statement s = db.createStatement()) {
            int version = intOf(s, "PRAGMA user_version");
            if (version == 0 && intOf(s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") == 1) {
                version = intOf(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
                s.execute("PRAGMA user_version = " + version);
            }
            return version;
        }
    }

    private static int intOf(Statement s, String sql) throws SQLException {
        try (ResultSet r = s.executeQuery(sql)) {
            return r.next() ? r.getInt(1) : 0;
        }
    }

    /** Reads one row of a result. */
    @FunctionalInterface
    public interface Row<T> {
        T read(ResultSet r) throws SQLException;
    }

    /**
     * Runs {@code body}'s statements as one transaction: all of them or none, and one commit (one sync to disk)
     * instead of one per statement.
     */
    public static void inTransaction(Connection db, Runnable body) {
        try {
            db.setAutoCommit(false);
            try {
                body.run();
                db.commit();
            } catch (RuntimeException | Error e) {
                db.rollback();
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new IllegalStateException("database: " + e.getMessage(), e);
        }
    }

    /** Runs an INSERT/UPDATE/DELETE with positional arguments; returns the rows changed. */
    public static int update(Connection db, String sql, Object... args) {
        try (PreparedStatement p = db.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                p.setObject(i + 1, args[i]);
            }
            return p.executeUpdate();
        } catch (SQLException e) {
            throw new IllegalStateException("database: " + e.getMessage(), e);
        }
    }

    public static <T> List<T> query(Connection db, String sql, List<?> args, Row<T> row) {
        List<T> out = new ArrayList<>();
        try (PreparedStatement p = db.prepareStatement(sql)) {
            for (int i = 0; i < args.size(); i++) {
                p.setObject(i + 1, args.get(i));
            }
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) {
                    out.add(row.read(r));
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException("database: " + e.getMessage(), e);
        }
        return out;
    }

    public static void close(Connection db) {
        try {
            db.close();
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String resource(String name) {
        try (InputStream in = Database.class.getResourceAsStream(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
