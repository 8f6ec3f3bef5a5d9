package dev.steer.db;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Migrations by PRAGMA user_version: a new file, an older one (either way of counting), a second open, a newer file. */
class DatabaseTest {
    private static long count(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
            r.next();
            return r.getLong(1);
        }
    }

    private static List<String> tables(Connection c) throws SQLException {
        return Database.query(c, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                List.of(), r -> r.getString(1));
    }

    private static void insertV1Steer(Connection c, String id) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("INSERT INTO steers (id, session_id, kind, model, request_json, prompt_tokens, at_token, accepted_tokens,"
                    + " rejected_tokens, correction_tokens, correction_text, accepted_text, rejected_text, created_at, updated_at)"
                    + " VALUES ('" + id + "', 'sess', 'rejection', 'm', '{\"a;b\":1}', '[7,8]', 0, '[]', '[]', '[]', '', '', '', 1, 1)");
        }
    }

    @Test
    void aNewFileGetsEveryMigrationAndItsVersion(@TempDir Path dir) throws Exception {
        Connection c = Database.connect(dir.resolve("new.db"));
        try {
            assertEquals(Database.currentVersion(), count(c, "PRAGMA user_version"));
            assertTrue(tables(c).containsAll(List.of("steers", "steer_tags", "jobs", "adapters", "activations", "session_requests")),
                    tables(c).toString());
            assertTrue(!tables(c).contains("schema_version"), "the old version table is not created any more");
        } finally {
            c.close();
        }
    }

    @Test
    void aFileAtAnOlderVersionIsMigratedAndReopeningIsANoOp(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("old.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file)) {
            Database.migrate(c, 1);  // as a server of V1 left it
            assertEquals(1, count(c, "PRAGMA user_version"));
            insertV1Steer(c, "old");
        }
        Connection c = Database.connect(file);
        try {
            assertEquals(Database.currentVersion(), count(c, "PRAGMA user_version"));
            assertEquals(1, count(c, "SELECT COUNT(*) FROM steers WHERE id = 'old'"), "the row survived V2 and V3");
            assertEquals(1, count(c, "SELECT COUNT(*) FROM session_requests WHERE request_json = '{\"a;b\":1}'"),
                    "V3 moved its request out of the steer row");
        } finally {
            c.close();
        }
        // A second open runs nothing: V1's CREATE TABLE would fail on the existing table, V3's DROP COLUMN too.
        c = Database.connect(file);
        try {
            assertEquals(Database.currentVersion(), count(c, "PRAGMA user_version"));
            assertEquals(1, count(c, "SELECT COUNT(*) FROM steers"));
            assertEquals(1, count(c, "SELECT COUNT(*) FROM session_requests"));
        } finally {
            c.close();
        }
    }

    @Test
    void aFileThatCountedItsMigrationsInSchemaVersionIsTakenOver(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("legacy.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement s = c.createStatement()) {
            Database.migrate(c, 2);
            s.execute("PRAGMA user_version = 0");  // how the server wrote it before user_version: a table of versions
            s.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)");
            s.execute("INSERT INTO schema_version VALUES (1), (2)");
            insertV1Steer(c, "legacy");
        }
        Connection c = Database.connect(file);
        try {
            assertEquals(Database.currentVersion(), count(c, "PRAGMA user_version"));
            assertEquals(1, count(c, "SELECT COUNT(*) FROM session_requests"), "only V3 ran");
        } finally {
            c.close();
        }
    }

    @Test
    void aFileFromANewerServerIsRefused(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("newer.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement s = c.createStatement()) {
            s.execute("PRAGMA user_version = " + (Database.currentVersion() + 1));
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Database.connect(file));
        assertTrue(e.getMessage().contains("newer"), e.getMessage());
    }

    @Test
    void aFailingMigrationChangesNothing(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("half.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement s = c.createStatement()) {
            Database.migrate(c, 1);
            // V2 creates jobs and adapters, then activations: that last statement fails, and the first two go with it.
            s.execute("CREATE TABLE activations (id INTEGER)");
            assertThrows(SQLException.class, () -> Database.migrate(c, 2));
            assertEquals(1, count(c, "PRAGMA user_version"));
            assertEquals(0, count(c, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('jobs', 'adapters')"));
        }
    }

    /**
     * A transaction holds the write lock from its start: one that reads first and writes after another connection's
     * commit (a steer's insert) cannot then fail at once with SQLITE_BUSY (the fuzz suite's one 500, 2026-12-05).
     * Checked from the other side: while it is open, another connection that will not wait cannot write.
     */
    @Test
    void aTransactionHoldsTheWriteLockFromItsStart(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("s.db");
        try (Connection a = Database.connect(file); Connection b = Database.connect(file)) {
            try (Statement s = b.createStatement()) {
                s.execute("PRAGMA busy_timeout=0");
            }
            Database.inTransaction(a, () -> {
                Database.query(a, "SELECT count(*) FROM steers", List.of(), r -> r.getLong(1));  // only a read so far
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> Database.update(b, "DELETE FROM jobs WHERE id = 'none'"));
                assertTrue(e.getMessage().contains("SQLITE_BUSY"), e.getMessage());
                Database.update(a, "DELETE FROM steers WHERE id = 'none'");
            });
        }
    }
}
