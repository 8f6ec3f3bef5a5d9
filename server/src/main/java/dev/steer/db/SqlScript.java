package dev.steer.db;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Splits a migration script into statements. The rule: a statement ends at a {@code ;} that is outside a quoted
 * string or name ({@code '...'} with {@code ''} inside, {@code "..."}, {@code `...`}, {@code [...]}) and outside a
 * comment ({@code -- ...} to the end of the line, {@code /* ... *}{@code /}). Comments stay in the statement text
 * (SQLite skips them); statements that hold nothing but comments and blanks are dropped. Not supported, and refused
 * rather than split wrongly: {@code CREATE TRIGGER}, whose {@code BEGIN ... END} body holds {@code ;} of its own.
 */
public final class SqlScript {
    private SqlScript() {}

    public static List<String> statements(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder stmt = new StringBuilder();
        StringBuilder code = new StringBuilder();  // the statement without its comments: is there anything to run?
        int n = script.length();
        for (int i = 0; i < n; i++) {
            char c = script.charAt(i);
            if (c == '-' && i + 1 < n && script.charAt(i + 1) == '-') {
                int end = script.indexOf('\n', i);
                end = end < 0 ? n : end;
                stmt.append(script, i, end);
                i = end - 1;
            } else if (c == '/' && i + 1 < n && script.charAt(i + 1) == '*') {
                int end = script.indexOf("*/", i + 2);
                if (end < 0) {
                    throw new IllegalArgumentException("unterminated /* comment at offset " + i);
                }
                stmt.append(script, i, end + 2);
                i = end + 1;
            } else if (c == '\'' || c == '"' || c == '`' || c == '[') {
                int end = closing(script, i, c == '[' ? ']' : c);
                stmt.append(script, i, end + 1);
                code.append(script, i, end + 1);
                i = end;
            } else if (c == ';') {
                add(out, stmt, code);
            } else {
                stmt.append(c);
                code.append(c);
            }
        }
        add(out, stmt, code);
        return out;
    }

    /** The index of the quote that closes the one at {@code open}; a doubled quote inside is an escaped one. */
    private static int closing(String s, int open, char quote) {
        for (int i = open + 1; i < s.length(); i++) {
            if (s.charAt(i) == quote) {
                if (quote != ']' && i + 1 < s.length() && s.charAt(i + 1) == quote) {
                    i++;
                    continue;
                }
                return i;
            }
        }
        throw new IllegalArgumentException("unterminated " + s.charAt(open) + " at offset " + open);
    }

    private static void add(List<String> out, StringBuilder stmt, StringBuilder code) {
        String what = code.toString().strip().replaceAll("\\s+", " ").toUpperCase(Locale.ROOT);
        if (what.matches("CREATE (TEMP |TEMPORARY )?TRIGGER .*")) {
            throw new IllegalArgumentException("CREATE TRIGGER is not supported by the migration splitter (its body holds ';'): "
                    + stmt.toString().strip());
        }
        if (!what.isEmpty()) {
            out.add(stmt.toString().strip());
        }
        stmt.setLength(0);
        code.setLength(0);
    }
}
