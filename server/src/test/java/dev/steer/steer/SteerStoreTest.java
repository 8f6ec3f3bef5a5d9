package dev.steer.steer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A session's request is stored once for all its records (issue 16, item 7), and databases from before keep theirs;
 * answers the person let run are kept up to the retention, and a steer of one takes it back.
 */
@Timeout(60)
class SteerStoreTest {
    private static SteerRecord record(String id, String session, String request, int at) {
        return new SteerRecord(id, session, "rejection", "m", null, request, new int[] {1, 2, 3}, at, new int[at], new int[0],
                new int[0], "", "", "", null, null, null, false, Set.of(), 1000 + at, 1000 + at);
    }

    private static long count(Path db, String sql) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement();
             ResultSet r = s.executeQuery(sql)) {
            return r.getLong(1);
        }
    }

    @Test
    void aSessionsRequestIsStoredOnceAndGoesWithItsLastRecord() throws Exception {
        Path db = Files.createTempDirectory("steer-store").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db)) {
            String request = "{\"messages\":[],\"padding\":\"" + "x".repeat(100_000) + "\"}";
            for (int i = 0; i < 5; i++) {
                store.insert(record("r" + i, "s1", request, i));
            }
            store.insert(record("other", "s2", "{}", 0));
            assertEquals(2, count(db, "SELECT COUNT(*) FROM session_requests"));
            assertTrue(count(db, "SELECT SUM(LENGTH(request_json)) FROM session_requests") < 2 * request.length());
            for (SteerRecord r : store.list(new SteerStore.Filter("s1", null, null, null, null, true))) {
                assertEquals(request, r.requestJson());
                assertArrayEquals(new int[] {1, 2, 3}, r.promptTokens());
            }
            for (int i = 0; i < 4; i++) {
                store.delete("r" + i);
            }
            assertEquals(request, store.get("r4").orElseThrow().requestJson(), "still there for the last record");
            store.delete("r4");
            assertEquals(1, count(db, "SELECT COUNT(*) FROM session_requests"), "a deleted session's request is gone with it");
        }
    }

    @Test
    void recordsWrittenBeforeTheMigrationKeepTheirRequest() throws Exception {
        Path db = Files.createTempDirectory("steer-store-v2").resolve("steers.db");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
            for (String name : List.of("V1__steers.sql", "V2__jobs_adapters.sql")) {
                for (String stmt : migration(name).split(";")) {
                    if (!stmt.isBlank()) {
                        s.execute(stmt);
                    }
                }
            }
            s.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)");
            s.execute("INSERT INTO schema_version VALUES (1), (2)");
            for (int i = 0; i < 2; i++) {
                s.execute("INSERT INTO steers (id, session_id, kind, model, request_json, prompt_tokens, at_token, accepted_tokens,"
                        + " rejected_tokens, correction_tokens, correction_text, accepted_text, rejected_text, created_at, updated_at)"
                        + " VALUES ('old" + i + "', 'sold', 'rejection', 'm', '{\"old\":true}', '[7,8]', 0, '[]', '[]', '[]', '', '', '', " + i + ", " + i + ")");
            }
        }
        try (SteerStore store = SteerStore.open(db)) {
            for (String id : List.of("old0", "old1")) {
                SteerRecord r = store.get(id).orElseThrow();
                assertEquals("{\"old\":true}", r.requestJson());
                assertArrayEquals(new int[] {7, 8}, r.promptTokens());
            }
            assertEquals(1, count(db, "SELECT COUNT(*) FROM session_requests"));
        }
    }

    private static Accepted accepted(String session, long at) {
        return new Accepted(session, "m", null, new int[] {1, 2}, new int[] {5, 6, 7}, at);
    }

    private static List<String> acceptedIds(SteerStore store) {
        return store.accepted("m", 100).stream().map(Accepted::sessionId).toList();
    }

    @Test
    void acceptedAnswersAreKeptNewestFirstUpToTheRetention() throws Exception {
        Path db = Files.createTempDirectory("steer-store-accepted").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db, 3)) {
            for (int i = 0; i < 5; i++) {
                store.insertAccepted(accepted("a" + i, 1000 + i));
            }
            assertEquals(List.of("a4", "a3", "a2"), acceptedIds(store), "the newest 3, newest first");
            Accepted a = store.accepted("m", 1).get(0);
            assertArrayEquals(new int[] {1, 2}, a.promptTokens());
            assertArrayEquals(new int[] {5, 6, 7}, a.outputTokens());
            assertEquals(List.of(), store.accepted("other model", 10));
        }
        try (SteerStore store = SteerStore.open(db, 2)) {
            assertEquals(List.of("a4", "a3"), acceptedIds(store), "a smaller retention applies at the next start");
        }
        try (SteerStore store = SteerStore.open(db, 0)) {
            assertFalse(store.keepsAccepted());
            assertEquals(List.of(), acceptedIds(store), "0 deletes what was kept");
            store.insertAccepted(accepted("b", 2000));
            assertEquals(List.of(), acceptedIds(store), "and keeps nothing new");
        }
    }

    @Test
    void theReplayReadsOnlyAnswersTheBaseModelWrote() throws Exception {
        Path db = Files.createTempDirectory("steer-store-accepted-base").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db, 10)) {
            store.insertAccepted(accepted("base-old", 1000));
            store.insertAccepted(new Accepted("adapter", "m", "v3", new int[] {1}, new int[] {5}, 1001));
            store.insertAccepted(accepted("base-new", 1002));
            assertEquals(List.of("base-new", "adapter", "base-old"), acceptedIds(store));
            assertEquals(List.of("base-new", "base-old"), store.acceptedFromBase("m", 10).stream().map(Accepted::sessionId).toList(),
                    "an answer an adapter wrote is not the base model's to keep");
            assertEquals(List.of("base-new"), store.acceptedFromBase("m", 1).stream().map(Accepted::sessionId).toList());
        }
    }

    @Test
    void aSteerOrStopOfAnAcceptedAnswerTakesItBack() throws Exception {
        Path db = Files.createTempDirectory("steer-store-accepted").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db)) {
            store.insertAccepted(accepted("s1", 1000));
            store.insertAccepted(accepted("s2", 1001));
            store.insert(record("r1", "s1", "{}", 1));  // the finished answer s1 stopped afterwards
            assertEquals(List.of("s2"), acceptedIds(store));
            store.insertAccepted(accepted("s1", 1002));  // a stop during the answer is written before its end
            assertEquals(List.of("s2"), acceptedIds(store), "a session with a record is never accepted");
        }
    }

    private static String migration(String name) throws Exception {
        try (InputStream in = dev.steer.db.Database.class.getResourceAsStream("migrations/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).replaceAll("--[^\n]*", "");
        }
    }

    @Test
    void addingTagsNeverRemovesOnesAlreadyThere() throws Exception {
        Path db = Files.createTempDirectory("steer-store").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db)) {
            store.insert(record("r", "s", "{}", 1));
            assertTrue(store.addTags("r", Set.of("first")));
            // Any deletion of a tag now fails: adding must not rewrite the set (its delete, committed before the
            // inserts, lost acknowledged tags to a kill in between).
            try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement st = c.createStatement()) {
                st.execute("CREATE TRIGGER keep_tags BEFORE DELETE ON steer_tags BEGIN SELECT RAISE(ABORT, 'a tag was deleted'); END");
            }
            assertTrue(store.addTags("r", Set.of("second", "first")));
            assertEquals(Set.of("first", "second"), store.get("r").orElseThrow().tags());
            assertFalse(store.addTags("nobody", Set.of("x")), "no record, no tags");
        }
    }

    @Test
    void aSteerAndThePreviousSteersContinuationAreStoredTogetherOrNotAtAll() throws Exception {
        Path db = Files.createTempDirectory("steer-store").resolve("steers.db");
        try (SteerStore store = SteerStore.open(db)) {
            store.insert(record("first", "s", "{}", 1));
            store.setContinuation("first", new int[] {1, 2, 3}, "one two three");
            store.insertAfter("first", new int[] {1, 2}, "one two", record("second", "s", "{}", 3));
            assertArrayEquals(new int[] {1, 2}, store.get("first").orElseThrow().continuationTokens(), "cut back where the second steer forked");
            assertTrue(store.get("second").isPresent());
            // A steer that cannot be stored (its id taken) leaves the previous continuation as it was.
            try {
                store.insertAfter("second", new int[] {7}, "seven", record("first", "s", "{}", 5));
                throw new AssertionError("a record stored twice under one id");
            } catch (IllegalStateException expected) {
                // the primary key refused it
            }
            assertEquals(null, store.get("second").orElseThrow().continuationTokens(), "rolled back with the failed insert");
        }
    }
}
