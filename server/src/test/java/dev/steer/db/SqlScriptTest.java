package dev.steer.db;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The migration splitter: ';' ends a statement only outside quotes and comments. */
class SqlScriptTest {
    @Test
    void semicolonsInQuotesAndCommentsDoNotSplit() {
        String script = """
                -- a comment; with a semicolon
                CREATE TABLE t (a TEXT DEFAULT 'x;y', "b;c" INTEGER, [d;e] TEXT, `f;g` TEXT); /* one; two */
                INSERT INTO t (a) VALUES ('it''s; fine');
                ;
                -- only a comment, then nothing
                """;
        assertEquals(List.of(
                "-- a comment; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT 'x;y', \"b;c\" INTEGER, [d;e] TEXT, `f;g` TEXT)",
                "/* one; two */\nINSERT INTO t (a) VALUES ('it''s; fine')"), SqlScript.statements(script));
    }

    @Test
    void theLastStatementNeedsNoSemicolon() {
        assertEquals(List.of("SELECT 1", "SELECT 2"), SqlScript.statements("SELECT 1;\nSELECT 2\n"));
    }

    @Test
    void whatItCannotSplitIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> SqlScript.statements("SELECT 'open"));
        assertThrows(IllegalArgumentException.class, () -> SqlScript.statements("SELECT 1 /* open"));
        assertThrows(IllegalArgumentException.class,
                () -> SqlScript.statements("create  temp trigger t after insert on a begin delete from b; end;"));
    }
}
