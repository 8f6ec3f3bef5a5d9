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

/**
 * The server's one SQLite file (steers, training jobs, adapter versions). WAL with synchronous=FULL: a committed
 * write is on disk, so what the server acknowledged survives a crash. Schema changes are numbered migrations
 * (resources migrations/V*.sql), applied when a connection opens. Each store holds its own connection and lock;
 * SQLite serializes writers across them (busy_timeout).
 */
public final class Database {
    private static final String[] MIGRATIONS = {"V1__steers.sql", "V2__jobs_adapters.sql", "V3__session_requests.sql"};

    private Database() {}

    /** A connection to {@code file}, created and migrated to the current schema if needed. */
    public static synchronized Connection connect(Path file) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Connection db = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
            try (Statement s = db.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=FULL");
                s.execute("PRAGMA foreign_keys=ON");
                s.execute("PRAGMA busy_timeout=5000");
            }
            migrate(db);
            return db;
        } catch (SQLException | IOException e) {
            throw new IllegalStateException("cannot open the database at " + file + ": " + e.getMessage(), e);
        }
    }

    private static void migrate(Connection db) throws SQLException {
        try (Statement s = db.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
            int version;
            try (ResultSet r = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
                version = r.next() ? r.getInt(1) : 0;
            }
            for (int v = version; v < MIGRATIONS.length; v++) {
                db.setAutoCommit(false);
                try {
                    // Our migrations hold no string literals: drop "--" comments, then run each ";"-separated statement.
                    String script = resource("migrations/" + MIGRATIONS[v]).replaceAll("--[^\n]*", "");
                    for (String stmt : script.split(";")) {
                        if (!stmt.isBlank()) {
                            s.execute(stmt.strip());
                        }
                    }
                    s.execute("INSERT INTO schema_version(version) VALUES (" + (v + 1) + ")");
                    db.commit();
                } catch (SQLException e) {
                    db.rollback();
                    throw e;
                } finally {
                    db.setAutoCommit(true);
                }
            }
        }
    }

    /** Reads one row of a result. */
    @FunctionalInterface
    public interface Row<T> {
        T read(ResultSet r) throws SQLException;
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
