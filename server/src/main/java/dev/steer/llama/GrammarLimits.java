package dev.steer.llama;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Resource limits for an untrusted GBNF grammar, checked before llama.cpp sees it.
 *
 * <p>llama.cpp's grammar code trusts its input: its parser recurses once per nested group (a few thousand levels
 * overflow the stack and kill the process), its left-recursion check recurses once per rule of a chain of leftmost
 * references, a repetition {@code {5,2}} underflows an unsigned count and allocates rules until memory runs out, a
 * truly left-recursive rule its check misses grows a parse stack forever, and its token masking explores every way a
 * token's characters can be split among ambiguous optional items, without memoising: 300 optional items in a row
 * keep the decode thread busy for good. So a grammar is scanned here first, in Java and without recursion: the
 * scanner follows llama.cpp's parser ({@code llama-grammar.cpp}) rule for rule, builds a small model of the rules it
 * would make (groups and repetitions become rules there too) and measures that model against the limits below.
 *
 * <p>The limits are generous for real grammars: the GBNF llama.cpp generates from a JSON schema within OpenAI's
 * structured-output limits (5,000 properties, 10 levels of nesting, 1,000 enum values) passes. Each one says why it
 * exists. A grammar that passes can still be slow if it is highly ambiguous in ways the limits do not measure (for
 * example many adjacent {@code [a-z]+} items); the limits bound the known blow-ups and keep every step finite.
 *
 * <p>The same checks run on grammars generated from JSON schemas; {@link #checkJsonSchema} additionally rejects
 * schemas that can never match (minLength above maxLength and the like) and schemas nested deeper than the
 * converter's recursion can take.
 */
public final class GrammarLimits {
    private GrammarLimits() {}

    /**
     * Bytes of GBNF (UTF-8). Parse time and memory are linear in it; 1 MiB leaves room for the grammar of a large JSON
     * schema (each property name appears in it several times), while the limits below bound what it expands to.
     */
    public static final int MAX_BYTES = 1 << 20;

    /**
     * How deep groups may nest: llama.cpp's parser recurses once per nested group, on the caller's thread stack, and
     * about 3,000 levels overflow a 1 MiB Java thread stack (the process dies). 128 is far below that and far above
     * any real grammar (JSON schemas become rules that refer to each other, not nested groups).
     */
    public static final int MAX_DEPTH = 128;

    /**
     * How long a chain of rules may be where each one starts with (a reference to) the next, or to the next after
     * items that may be empty: llama.cpp's left-recursion check recurses once per link, about 130 bytes of stack each,
     * and about 8,000 links overflow a 1 MiB stack. The grammar of a JSON object has such a link per optional
     * property, so the limit leaves room for objects of 1,000 optional properties.
     */
    public static final int MAX_CHAIN = 1000;

    /**
     * Rules after expansion: named rules, groups, and the rules llama.cpp makes for repetitions ({@code x{0,100}} makes
     * 100, so a JSON schema string with maxLength 200 makes 200). Every sampler holds its own copy and building one runs
     * on the decode thread: 50,000 rules take about 150 ms here, 100,000 about 300 ms, stalling other requests meanwhile.
     */
    public static final int MAX_RULES = 50_000;

    /**
     * Grammar elements (characters, ranges, references) after expansion: {@code "<60 KB literal>"{2000}} is small text
     * but 120 million elements (about 1 GB). One million is 8 MB per sampler and about 80 ms to build.
     */
    public static final long MAX_ELEMENTS = 1_000_000;

    /**
     * Alternatives of one rule or group: every alternative is a parse position each vocabulary token is checked
     * against. 1,024 takes an enum of OpenAI's maximum of 1,000 values.
     */
    public static final int MAX_ALTERNATIVES = 1024;

    /**
     * Parse positions one step can branch into (an upper bound that adds up alternatives, through leftmost rule
     * references and items that may match nothing). llama.cpp masks the vocabulary once per position, so each one
     * costs a pass over the vocabulary for every token sampled; nested alternatives multiply.
     */
    public static final long MAX_FANOUT = 2048;

    /**
     * Items in a row that may each match nothing ({@code x?}, {@code x*}, {@code x{0,n}}, or a rule or group that can
     * be empty; an optional group counts the optional items it holds). With n such items that can match the same
     * character, llama.cpp tries every way to spread a token's characters over them, remembering nothing: up to 2^n
     * paths per vocabulary token. 300 items wedge the decode thread; on SmolLM2's 49k vocabulary 16 optional spaces
     * cost no more than the grammar without them, while 20 took over a minute for 20 tokens.
     */
    public static final int MAX_OPTIONAL_RUN = 16;

    /**
     * A repetition's count, {@code x{m,n}}: llama.cpp copies the item m times and makes n - m rules, and refuses
     * m above 2,000 itself. A maximum above 2,000 is treated as no maximum (llama.cpp's own rule), so it costs one
     * rule; a maximum below the minimum is refused (llama.cpp would underflow and allocate without end).
     */
    public static final int MAX_REPETITION = 2000;

    /**
     * JSON nesting of a {@code json_schema}: llama.cpp's schema reader and converter recurse once per level.
     * OpenAI allows 10 levels of nested objects (about 30 levels of JSON).
     */
    public static final int MAX_SCHEMA_DEPTH = 128;

    /** A grammar (or schema) this server will not hand to llama.cpp; {@link #code()} names the limit or problem. */
    public static final class Violation extends IllegalArgumentException {
        private final String code;

        Violation(String code, String message) {
            super(message);
            this.code = code;
        }

        /** For the API error's {@code code}: {@code grammar_too_deep}, {@code invalid_grammar}, ... */
        public String code() {
            return code;
        }
    }

    /** Throws {@link Violation} unless this GBNF is well-formed (as llama.cpp parses it) and within every limit. */
    public static void check(String gbnf) {
        if (gbnf.isEmpty()) {
            return;  // llama.cpp takes an empty grammar for none at all
        }
        byte[] src = gbnf.getBytes(StandardCharsets.UTF_8);
        if (src.length > MAX_BYTES) {
            throw new Violation("grammar_too_large",
                    "The grammar is " + src.length + " bytes; the limit is " + MAX_BYTES + " bytes.");
        }
        for (byte b : src) {
            if (b == 0) {
                throw new Violation("invalid_grammar", "invalid grammar: it contains a NUL character.");
            }
        }
        Model m = new Parser(src).parse();
        new Analysis(m).run();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The model: what llama.cpp's parser would build, reduced to what the limits need.

    private static final int TERMINAL = -1;  // an item that matches characters or a token: "abc", [a-z], ., <[12]>

    private static final byte RULE = 0, GROUP = 1, REP = 2;

    /**
     * A rule as llama.cpp would have it. RULE: a named rule; GROUP: a parenthesised group; REP: the rules one
     * repetition of {@code body} makes. Items are TERMINAL or the index of another node.
     */
    private static final class Node {
        final byte kind;
        final String name;  // the named rule it belongs to, for messages
        final List<int[]> alts = new ArrayList<>();
        boolean defined;
        // REP only
        int body;
        long min;
        long extra;  // rules made beyond the copies: max - min, or 1 without a maximum

        Node(byte kind, String name) {
            this.kind = kind;
            this.name = name;
        }
    }

    private static final class Model {
        final List<Node> nodes = new ArrayList<>();
        final List<Integer> groupsInnerFirst = new ArrayList<>();  // groups in the order they closed
    }

    /** A growable int list (items of the sequence being read). */
    private static final class Ints {
        int[] a = new int[8];
        int n;

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }

        int[] take() {
            int[] r = Arrays.copyOf(a, n);
            n = 0;
            return r;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The parser: llama_grammar_parser::parse, with an explicit stack of open groups instead of recursion.

    private static final class Parser {
        private final byte[] s;
        private final Model m = new Model();
        private final Map<String, Integer> named = new HashMap<>();
        private final List<Integer> referencedAt = new ArrayList<>();  // node, byte offset of a reference, pairs
        private long rules;     // after expansion
        private long elements;  // after expansion

        /** A rule or group being read: its alternatives so far and the sequence in progress. */
        private final class Frame {
            final int node;
            final boolean nested;  // inside parentheses: newlines are blanks
            final Ints items = new Ints();
            final List<int[]> alts = new ArrayList<>();
            int last = -1;  // index in items of the last symbol, which a repetition applies to; -1: none
            long lastElements;
            long ruleElements;

            Frame(int node, boolean nested) {
                this.node = node;
                this.nested = nested;
            }

            void endAlternative(int at) {
                alts.add(items.take());
                last = -1;
                ruleElements = sat(ruleElements + 1);  // ALT or END
                if (alts.size() > MAX_ALTERNATIVES) {
                    throw new Violation("grammar_too_many_alternatives", "Rule '" + m.nodes.get(node).name + "' has more than "
                            + MAX_ALTERNATIVES + " alternatives in one rule or group (at " + where(at) + "); the limit is "
                            + MAX_ALTERNATIVES + ".");
                }
            }
        }

        Parser(byte[] s) {
            this.s = s;
        }

        private int at(int pos) {
            return pos < s.length ? s[pos] & 0xFF : 0;
        }

        Model parse() {
            int pos = space(0, true);
            while (at(pos) != 0) {
                pos = rule(pos);
            }
            if (named.isEmpty()) {
                throw syntax("the grammar has no rules", pos);
            }
            for (int i = 0; i < referencedAt.size(); i += 2) {
                Node n = m.nodes.get(referencedAt.get(i));
                if (!n.defined) {
                    throw new Violation("invalid_grammar", "invalid grammar: undefined rule '" + n.name + "' (referenced at "
                            + where(referencedAt.get(i + 1)) + ").");
                }
            }
            if (!named.containsKey("root")) {
                throw new Violation("invalid_grammar", "invalid grammar: there is no 'root' rule.");
            }
            return m;
        }

        /** One {@code name ::= alternatives} line (llama_grammar_parser::parse_rule). */
        private int rule(int pos) {
            int nameEnd = name(pos);
            String name = new String(s, pos, nameEnd - pos, StandardCharsets.US_ASCII);
            int p = space(nameEnd, false);
            if (!(at(p) == ':' && at(p + 1) == ':' && at(p + 2) == '=')) {
                throw syntax("expecting ::=", p);
            }
            p = space(p + 3, true);
            int id = namedNode(name);
            Node rule = m.nodes.get(id);
            rule.defined = true;
            rule.alts.clear();  // a rule defined twice keeps its last definition, as in llama.cpp
            p = alternates(p, id);
            if (at(p) == '\r') {
                p += at(p + 1) == '\n' ? 2 : 1;
            } else if (at(p) == '\n') {
                p++;
            } else if (at(p) != 0) {
                throw syntax("expecting newline or end", p);
            }
            return space(p, true);
        }

        private int namedNode(String name) {
            Integer id = named.get(name);
            if (id == null) {
                id = m.nodes.size();
                m.nodes.add(new Node(RULE, name));
                named.put(name, id);
                countRules(1, 0);
            }
            return id;
        }

        /**
         * The alternatives of rule {@code ruleNode} and every group nested in them (parse_alternates and
         * parse_sequence, which call each other once per group in llama.cpp).
         */
        private int alternates(int pos, int ruleNode) {
            ArrayDeque<Frame> open = new ArrayDeque<>();
            open.push(new Frame(ruleNode, false));
            String owner = m.nodes.get(ruleNode).name;
            while (true) {
                Frame f = open.peek();
                int c = at(pos);
                if (c == '"') {  // literal string
                    int p = pos + 1;
                    long n = 0;
                    while (at(p) != '"') {
                        if (at(p) == 0) {
                            throw syntax("unexpected end of input", p);
                        }
                        p = (int) character(p)[1];
                        n++;
                    }
                    symbol(f, TERMINAL, n);
                    pos = space(p + 1, f.nested);
                } else if (c == '[') {  // character class
                    int p = pos + 1;
                    if (at(p) == '^') {
                        p++;
                    }
                    long n = 0;
                    while (at(p) != ']') {
                        if (at(p) == 0) {
                            throw syntax("unexpected end of input", p);
                        }
                        int start = p;
                        long[] low = character(p);
                        p = (int) low[1];
                        n++;
                        if (at(p) == '-' && at(p + 1) != ']') {
                            if (at(p + 1) == 0) {
                                throw syntax("unexpected end of input", p + 1);
                            }
                            long[] high = character(p + 1);
                            p = (int) high[1];
                            n++;
                            if (low[0] > high[0]) {
                                throw new Violation("grammar_invalid_char_range", "The character range '"
                                        + new String(s, start, p - start, StandardCharsets.UTF_8) + "' at " + where(start)
                                        + " is empty: its low end is above its high end, so it can never match.");
                            }
                        }
                    }
                    symbol(f, TERMINAL, n);
                    pos = space(p + 1, f.nested);
                } else if (c == '<' || c == '!') {  // token, or any token but this one
                    int p = c == '!' ? pos + 1 : pos;
                    p = token(p);
                    symbol(f, TERMINAL, 1);
                    pos = space(p, f.nested);
                } else if (isWordChar(c)) {  // rule reference
                    int end = name(pos);
                    int id = namedNode(new String(s, pos, end - pos, StandardCharsets.US_ASCII));
                    referencedAt.add(id);
                    referencedAt.add(pos);
                    symbol(f, id, 1);
                    pos = space(end, f.nested);
                } else if (c == '(') {  // group: a rule of its own
                    if (open.size() > MAX_DEPTH) {
                        throw new Violation("grammar_too_deep", "Groups are nested more than " + MAX_DEPTH
                                + " deep (at " + where(pos) + "); the limit is " + MAX_DEPTH + ".");
                    }
                    pos = space(pos + 1, true);
                    int id = m.nodes.size();
                    m.nodes.add(new Node(GROUP, owner));
                    countRules(1, 0);
                    open.push(new Frame(id, true));
                } else if (c == '.') {  // any character
                    symbol(f, TERMINAL, 1);
                    pos = space(pos + 1, f.nested);
                } else if (c == '*' || c == '+' || c == '?') {
                    int opAt = pos;
                    pos = space(pos + 1, f.nested);
                    repeat(f, c == '+' ? 1 : 0, c == '?' ? 1 : -1, opAt);
                } else if (c == '{') {
                    int opAt = pos;
                    int p = space(pos + 1, f.nested);
                    if (!isDigit(at(p))) {
                        throw syntax("expecting an int", p);
                    }
                    int end = integer(p);
                    BigInteger min = new BigInteger(new String(s, p, end - p, StandardCharsets.US_ASCII));
                    p = space(end, f.nested);
                    BigInteger max = null;  // null: no maximum
                    if (at(p) == '}') {
                        max = min;
                        p = space(p + 1, f.nested);
                    } else if (at(p) == ',') {
                        p = space(p + 1, f.nested);
                        if (isDigit(at(p))) {
                            end = integer(p);
                            max = new BigInteger(new String(s, p, end - p, StandardCharsets.US_ASCII));
                            p = space(end, f.nested);
                        }
                        if (at(p) != '}') {
                            throw syntax("expecting '}'", p);
                        }
                        p = space(p + 1, f.nested);
                    } else {
                        throw syntax("expecting ','", p);
                    }
                    if (min.compareTo(UINT64_MAX) > 0 || (max != null && max.compareTo(UINT64_MAX) > 0)) {
                        throw syntax("repetition count out of range", opAt);
                    }
                    String text = new String(s, opAt, p - opAt, StandardCharsets.UTF_8).strip();
                    if (min.compareTo(BigInteger.valueOf(MAX_REPETITION)) > 0) {
                        throw new Violation("grammar_repetition_too_large", "The repetition '" + text + "' at "
                                + where(opAt) + " repeats at least " + min + " times; the limit is " + MAX_REPETITION + ".");
                    }
                    long lo = min.longValueExact();
                    long hi;
                    if (max == null || max.equals(UINT64_MAX) || max.compareTo(BigInteger.valueOf(MAX_REPETITION)) > 0) {
                        hi = -1;  // above 2,000 llama.cpp enforces no maximum
                    } else {
                        hi = max.longValueExact();
                        if (hi < lo) {
                            throw new Violation("grammar_invalid_repetition", "The repetition '" + text + "' at "
                                    + where(opAt) + " has its maximum " + hi + " below its minimum " + lo + ".");
                        }
                    }
                    pos = p;
                    repeat(f, lo, hi, opAt);
                } else if (c == '|') {
                    f.endAlternative(pos);
                    pos = space(pos + 1, true);
                } else {
                    // the end of this rule's or group's alternatives
                    f.endAlternative(pos);
                    Node n = m.nodes.get(f.node);
                    n.alts.addAll(f.alts);
                    countRules(0, f.ruleElements);
                    open.pop();
                    if (!f.nested) {
                        return pos;
                    }
                    if (c != ')') {
                        throw syntax("expecting ')'", pos);
                    }
                    m.groupsInnerFirst.add(f.node);
                    Frame parent = open.peek();
                    symbol(parent, f.node, 1);
                    pos = space(pos + 1, parent.nested);
                }
            }
        }

        /** A symbol of {@code n} elements ends the sequence; a symbol of none (like "" or []) adds nothing. */
        private void symbol(Frame f, int item, long n) {
            if (n == 0) {
                f.last = -1;  // llama.cpp: nothing for a following repetition to apply to
                return;
            }
            f.last = f.items.n;
            f.items.add(item);
            f.lastElements = n;
            f.ruleElements = sat(f.ruleElements + n);
        }

        /**
         * {@code min} to {@code max} (-1: no maximum) of the last symbol (parse_sequence's handle_repetitions):
         * llama.cpp replaces it by min copies plus a reference to a chain of max - min new rules (one looping rule
         * without a maximum), each holding a copy of the symbol.
         */
        private void repeat(Frame f, long min, long max, int at) {
            if (f.last < 0) {
                throw syntax("expecting preceding item to */+/?/{", at);
            }
            long extra = max < 0 ? 1 : max - min;
            long e = f.lastElements;
            countRules(extra, sat(mul(extra, sat(e + 3))));  // each new rule: the symbol, a reference, ALT, END
            long after = sat(mul(e, min) + (extra > 0 ? 1 : 0));
            f.ruleElements = sat(f.ruleElements - e + after);
            int body = f.items.a[f.last];
            Node rep = new Node(REP, m.nodes.get(f.node).name);
            rep.body = body;
            rep.min = min;
            rep.extra = extra;
            if (after == 0) {  // x{0}: the symbol is gone, and nothing is left to repeat
                f.items.n = f.last;
                f.last = -1;
                return;
            }
            int id = m.nodes.size();
            m.nodes.add(rep);
            f.items.a[f.last] = id;
            f.lastElements = after;
        }

        private void countRules(long newRules, long newElements) {
            rules = sat(rules + newRules);
            elements = sat(elements + newElements);
            if (rules > MAX_RULES) {
                throw new Violation("grammar_too_many_rules", "The grammar expands to more than " + MAX_RULES
                        + " rules (named rules, groups and the rules repetitions make); the limit is " + MAX_RULES + ".");
            }
            if (elements > MAX_ELEMENTS) {
                throw new Violation("grammar_too_large", "The grammar expands to more than " + MAX_ELEMENTS
                        + " elements (repetitions copy what they repeat); the limit is " + MAX_ELEMENTS + ".");
            }
        }

        /** parse_space: blanks and # comments, and newlines where {@code newlineOk}. */
        private int space(int pos, boolean newlineOk) {
            while (true) {
                int c = at(pos);
                if (c == ' ' || c == '\t' || (newlineOk && (c == '\r' || c == '\n'))) {
                    pos++;
                } else if (c == '#') {
                    while (at(pos) != 0 && at(pos) != '\r' && at(pos) != '\n') {
                        pos++;
                    }
                } else {
                    return pos;
                }
            }
        }

        private int name(int pos) {
            int p = pos;
            while (isWordChar(at(p))) {
                p++;
            }
            if (p == pos) {
                throw syntax("expecting name", pos);
            }
            return p;
        }

        private int integer(int pos) {
            int p = pos;
            while (isDigit(at(p))) {
                p++;
            }
            if (p == pos) {
                throw syntax("expecting integer", pos);
            }
            return p;
        }

        /** parse_token: {@code <[id]>} or {@code <text>} (whether text is one token is llama.cpp's to check). */
        private int token(int pos) {
            if (at(pos) != '<') {
                throw syntax("expecting '<'", pos);
            }
            int p = pos + 1;
            if (at(p) == '[') {
                p = integer(p + 1);
                if (at(p) != ']') {
                    throw syntax("expecting ']'", p);
                }
                if (at(p + 1) != '>') {
                    throw syntax("expecting '>'", p + 1);
                }
                return p + 2;
            }
            while (at(p) != 0 && at(p) != '>') {
                p++;
            }
            if (at(p) != '>') {
                throw syntax("expecting '>'", p);
            }
            return p + 1;
        }

        /** parse_char: one (possibly escaped) character; returns {code point, position after it}. */
        private long[] character(int pos) {
            int c = at(pos);
            if (c == '\\') {
                int e = at(pos + 1);
                return switch (e) {
                    case 'x' -> hex(pos + 2, 2);
                    case 'u' -> hex(pos + 2, 4);
                    case 'U' -> hex(pos + 2, 8);
                    case 't' -> new long[] {'\t', pos + 2};
                    case 'r' -> new long[] {'\r', pos + 2};
                    case 'n' -> new long[] {'\n', pos + 2};
                    case '\\', '"', '[', ']', '-' -> new long[] {e, pos + 2};
                    default -> throw syntax("unknown escape", pos);
                };
            }
            if (c == 0) {
                throw syntax("unexpected end of input", pos);
            }
            // decode_utf8, as llama.cpp does it (the bytes come from a Java string, so they are valid UTF-8)
            int len = new int[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[c >> 4];
            long v = c & ((1 << (8 - len)) - 1);
            int p = pos + 1;
            for (; p < pos + len && at(p) != 0; p++) {
                v = (v << 6) + (at(p) & 0x3F);
            }
            return new long[] {v, p};
        }

        private long[] hex(int pos, int size) {
            long v = 0;
            int p = pos;
            for (; p < pos + size && at(p) != 0; p++) {
                int c = at(p);
                int d = Character.digit(c, 16);
                if (d < 0) {
                    break;
                }
                v = (v << 4) + d;
            }
            if (p != pos + size) {
                throw syntax("expecting " + size + " hex chars", pos);
            }
            return new long[] {v, p};
        }

        private Violation syntax(String what, int pos) {
            return new Violation("invalid_grammar", "invalid grammar: " + what + " at " + where(pos) + ".");
        }

        private String where(int pos) {
            int line = 1;
            int col = 1;
            for (int i = 0; i < pos && i < s.length; i++) {
                if (s[i] == '\n') {
                    line++;
                    col = 1;
                } else if ((s[i] & 0xC0) != 0x80) {
                    col++;
                }
            }
            return "line " + line + ", column " + col;
        }
    }

    private static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    private static boolean isDigit(int c) {
        return c >= '0' && c <= '9';
    }

    private static boolean isWordChar(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || isDigit(c);
    }

    /** Saturating arithmetic: counts only need to say "more than the limit". */
    private static final long CAP = Long.MAX_VALUE / 4;

    private static long sat(long v) {
        return v < 0 ? 0 : Math.min(v, CAP);
    }

    private static long mul(long a, long b) {
        if (a == 0 || b == 0) {
            return 0;
        }
        return a > CAP / b ? CAP : a * b;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The analysis of the model, all loops and worklists (the model can be as deep as the input is long).

    private static final class Analysis {
        private final Model m;
        private final List<Node> nodes;
        private final int n;
        private final boolean[] nullable;

        Analysis(Model m) {
            this.m = m;
            this.nodes = m.nodes;
            this.n = nodes.size();
            this.nullable = new boolean[n];
        }

        void run() {
            findNullable();
            int[] order = leftOrder();
            checkDepth(order);
            checkFanout(order);
            checkOptionalRuns();
        }

        private boolean nullable(int item) {
            return item != TERMINAL && nullable[item];
        }

        /** Which rules can match the empty string: the usual worklist, linear in the grammar. */
        private void findNullable() {
            List<int[]> altOwner = new ArrayList<>();  // {node, alt index}
            List<List<int[]>> usedIn = new ArrayList<>();  // node -> alternatives (or REP nodes, alt -1) using it
            for (int i = 0; i < n; i++) {
                usedIn.add(new ArrayList<>());
            }
            List<Integer> pending = new ArrayList<>();  // per alternative: items not yet known to be nullable
            ArrayDeque<Integer> work = new ArrayDeque<>();
            for (int u = 0; u < n; u++) {
                Node node = nodes.get(u);
                if (node.kind == REP) {
                    if (node.min == 0) {
                        mark(u, work);
                    } else if (node.body != TERMINAL) {
                        usedIn.get(node.body).add(new int[] {u, -1});
                    }
                    continue;
                }
                for (int[] alt : node.alts) {
                    int g = altOwner.size();
                    altOwner.add(new int[] {u});
                    int count = 0;
                    boolean hasTerminal = false;
                    for (int item : alt) {
                        if (item == TERMINAL) {
                            hasTerminal = true;
                        } else {
                            count++;
                            usedIn.get(item).add(new int[] {u, g});
                        }
                    }
                    pending.add(hasTerminal ? Integer.MAX_VALUE : count);
                    if (count == 0 && !hasTerminal) {
                        mark(u, work);
                    }
                }
            }
            while (!work.isEmpty()) {
                int v = work.poll();
                for (int[] use : usedIn.get(v)) {
                    int u = use[0];
                    if (nullable[u]) {
                        continue;
                    }
                    if (use[1] < 0) {
                        mark(u, work);
                    } else {
                        int left = pending.get(use[1]);
                        if (left != Integer.MAX_VALUE) {
                            pending.set(use[1], --left);
                            if (left == 0) {
                                mark(u, work);
                            }
                        }
                    }
                }
            }
        }

        private void mark(int u, ArrayDeque<Integer> work) {
            if (!nullable[u]) {
                nullable[u] = true;
                work.add(u);
            }
        }

        private int[][] leftEdges;  // node -> the nodes it starts with

        /**
         * The rules each rule starts with: its leftmost items, and the ones after them while those can be empty. A cycle
         * here is left recursion, which llama.cpp cannot run (its own check misses cycles through rules that are
         * empty only indirectly, and then a parse stack grows without end). Returns the nodes in topological order.
         */
        private int[] leftOrder() {
            leftEdges = new int[n][];
            int[] indegree = new int[n];
            Ints out = new Ints();
            for (int u = 0; u < n; u++) {
                Node node = nodes.get(u);
                if (node.kind == REP) {
                    // x* with an x that can be empty is no cycle to refuse: llama.cpp's loop rule for it (rec ::= x rec |)
                    // ends with itself, so expanding it never grows the parse stack and comes back to a stack it has
                    // seen. llama.cpp's own tool-call grammars say (tool-call? space)+.
                    if (node.body != TERMINAL) {
                        out.add(node.body);
                    }
                } else {
                    for (int[] alt : node.alts) {
                        for (int item : alt) {
                            if (item == TERMINAL) {
                                break;
                            }
                            out.add(item);
                            if (!nullable[item]) {
                                break;
                            }
                        }
                    }
                }
                leftEdges[u] = out.take();
                for (int v : leftEdges[u]) {
                    indegree[v]++;
                }
            }
            int[] order = new int[n];
            int done = 0;
            ArrayDeque<Integer> ready = new ArrayDeque<>();
            for (int u = 0; u < n; u++) {
                if (indegree[u] == 0) {
                    ready.add(u);
                }
            }
            while (!ready.isEmpty()) {
                int u = ready.poll();
                order[done++] = u;
                for (int v : leftEdges[u]) {
                    if (--indegree[v] == 0) {
                        ready.add(v);
                    }
                }
            }
            if (done < n) {
                // Every node left over has a predecessor left over: walking back n steps ends on a cycle.
                List<List<Integer>> preds = new ArrayList<>();
                for (int u = 0; u < n; u++) {
                    preds.add(new ArrayList<>());
                }
                for (int u = 0; u < n; u++) {
                    if (indegree[u] > 0) {  // left over
                        for (int v : leftEdges[u]) {
                            preds.get(v).add(u);
                        }
                    }
                }
                int u = 0;
                while (indegree[u] == 0) {
                    u++;
                }
                for (int step = 0; step < n; step++) {
                    for (int p : preds.get(u)) {
                        if (indegree[p] > 0) {
                            u = p;
                            break;
                        }
                    }
                }
                throw new Violation("grammar_left_recursion", "Rule '" + nodes.get(u).name + "' is left-recursive: it can"
                        + " reach itself without matching any character (through items that may be empty) with more to"
                        + " match after it; llama.cpp cannot run such a grammar.");
            }
            return order;
        }

        /** The longest chain of leftmost references (llama.cpp's left-recursion check recurses along it). */
        private void checkDepth(int[] order) {
            long[] depth = new long[n];
            for (int i = n - 1; i >= 0; i--) {
                int u = order[i];
                Node node = nodes.get(u);
                long w = node.kind != REP ? 1 : node.extra == 0 ? 0 : nullable(node.body) ? node.extra : 1;
                long below = 0;
                for (int v : leftEdges[u]) {
                    below = Math.max(below, depth[v]);
                }
                depth[u] = sat(w + below);
                if (depth[u] > MAX_CHAIN) {
                    throw new Violation("grammar_too_deep", "Rule '" + node.name + "' starts a chain of more than " + MAX_CHAIN
                            + " rules or groups, each beginning with the next (or with items that may be empty and then the"
                            + " next); the limit is " + MAX_CHAIN + ".");
                }
            }
        }

        /** An upper bound of the parse positions (stacks) one step can branch into. */
        private void checkFanout(int[] order) {
            long[] first = new long[n];  // positions a reference to the node expands to
            for (int i = n - 1; i >= 0; i--) {
                int u = order[i];
                Node node = nodes.get(u);
                long f;
                if (node.kind == REP) {
                    long body = node.body == TERMINAL ? 1 : first[node.body];
                    f = nullable(node.body) ? mul(body, Math.max(1, node.min + node.extra)) : body;
                } else {
                    f = 0;
                    for (int[] alt : node.alts) {
                        f = sat(f + run(alt, 0, first));
                    }
                }
                first[u] = f;
                if (f > MAX_FANOUT) {
                    throw fanout(node);
                }
            }
            // and at every point inside a sequence (after an item has matched)
            for (Node node : nodes) {
                for (int[] alt : node.alts) {
                    long run = 1;  // past the end: the parent's continuation
                    for (int j = alt.length - 1; j >= 0; j--) {
                        int item = alt[j];
                        long f = item == TERMINAL ? 1 : first[item];
                        run = sat(f + (nullable(item) ? run : 0));
                        if (run > MAX_FANOUT) {
                            throw fanout(node);
                        }
                    }
                }
            }
        }

        private long run(int[] alt, int from, long[] first) {
            long r = 0;
            for (int j = from; j < alt.length; j++) {
                int item = alt[j];
                r = sat(r + (item == TERMINAL ? 1 : first[item]));
                if (!nullable(item)) {
                    return r;
                }
            }
            return sat(r + 1);
        }

        private Violation fanout(Node node) {
            return new Violation("grammar_too_ambiguous", "At some point in rule '" + node.name + "' the grammar can"
                    + " continue in more than " + MAX_FANOUT + " ways (alternatives, through rules and optional items); the"
                    + " limit is " + MAX_FANOUT + ".");
        }

        /** Items in a row that may each match nothing; an optional group counts the optional items it holds. */
        private void checkOptionalRuns() {
            long[] inside = new long[n];  // a group: the most optional items one of its all-optional alternatives holds
            for (int g : m.groupsInnerFirst) {
                long most = 0;
                for (int[] alt : nodes.get(g).alts) {
                    long sum = 0;
                    boolean allOptional = true;
                    for (int item : alt) {
                        if (!nullable(item)) {
                            allOptional = false;
                            break;
                        }
                        sum = sat(sum + weight(item, inside));
                    }
                    if (allOptional) {
                        most = Math.max(most, sum);
                    }
                }
                inside[g] = most;
            }
            for (Node node : nodes) {
                for (int[] alt : node.alts) {
                    long run = 0;
                    for (int item : alt) {
                        run = nullable(item) ? sat(run + weight(item, inside)) : 0;
                        if (run > MAX_OPTIONAL_RUN) {
                            throw new Violation("grammar_too_many_optional_items", "Rule '" + node.name + "' has more than "
                                    + MAX_OPTIONAL_RUN + " optional items in a row (items with ?, * or {0,n}, or rules and"
                                    + " groups that may be empty); the limit is " + MAX_OPTIONAL_RUN + ": llama.cpp tries"
                                    + " every way to spread a token over them.");
                        }
                    }
                }
            }
        }

        private long weight(int item, long[] inside) {
            int base = item;
            while (base != TERMINAL && nodes.get(base).kind == REP) {
                base = nodes.get(base).body;
            }
            return base != TERMINAL && nodes.get(base).kind == GROUP ? Math.max(1, inside[base]) : 1;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // JSON schemas

    /**
     * Throws {@link Violation} for a {@code json_schema} nested deeper than {@link #MAX_SCHEMA_DEPTH} or with
     * constraints no value can meet: minLength above maxLength, minItems above maxItems, minProperties above
     * maxProperties, minimum above maximum (for integers: no integer between the bounds). The GBNF generated from the
     * schema still goes through {@link #check}.
     */
    public static void checkJsonSchema(JsonElement schema) {
        // data: under enum, const, default or examples, where objects are values, not schemas (only depth counts)
        record Entry(JsonElement e, String path, int depth, boolean data) {}
        ArrayDeque<Entry> todo = new ArrayDeque<>();
        todo.push(new Entry(schema, "#", 1, false));
        while (!todo.isEmpty()) {
            Entry x = todo.pop();
            if (x.depth > MAX_SCHEMA_DEPTH) {
                throw new Violation("schema_too_deep", "The JSON schema is nested more than " + MAX_SCHEMA_DEPTH
                        + " levels deep (at " + x.path + "); the limit is " + MAX_SCHEMA_DEPTH + ".");
            }
            if (x.e.isJsonArray()) {
                JsonArray a = x.e.getAsJsonArray();
                for (int i = 0; i < a.size(); i++) {
                    todo.push(new Entry(a.get(i), x.path + "/" + i, x.depth + 1, x.data));
                }
            } else if (x.e.isJsonObject()) {
                JsonObject o = x.e.getAsJsonObject();
                if (!x.data) {
                    checkBounds(o, x.path);
                }
                for (var kv : o.entrySet()) {
                    String k = kv.getKey();
                    boolean data = x.data || k.equals("enum") || k.equals("const") || k.equals("default") || k.equals("examples");
                    todo.push(new Entry(kv.getValue(), x.path + "/" + k, x.depth + 1, data));
                }
            }
        }
    }

    private static void checkBounds(JsonObject o, String path) {
        pair(o, path, "minLength", "maxLength", "characters");
        pair(o, path, "minItems", "maxItems", "items");
        pair(o, path, "minProperties", "maxProperties", "properties");
        BigDecimal min = number(o, "minimum");
        BigDecimal max = number(o, "maximum");
        BigDecimal xmin = number(o, "exclusiveMinimum");
        BigDecimal xmax = number(o, "exclusiveMaximum");
        boolean integer = o.has("type") && o.get("type").isJsonPrimitive() && o.get("type").getAsString().equals("integer");
        if (integer) {
            // as llama.cpp reads them: minimum (rounded up) or else exclusiveMinimum (rounded down) + 1, and so on
            BigDecimal lo = min != null ? min.setScale(0, RoundingMode.CEILING)
                    : xmin != null ? xmin.setScale(0, RoundingMode.FLOOR).add(BigDecimal.ONE) : null;
            BigDecimal hi = max != null ? max.setScale(0, RoundingMode.FLOOR)
                    : xmax != null ? xmax.setScale(0, RoundingMode.CEILING).subtract(BigDecimal.ONE) : null;
            if (lo != null && hi != null && lo.compareTo(hi) > 0) {
                throw unsatisfiable(path, "no integer is at least " + (min != null ? "minimum " + plain(min)
                        : "above exclusiveMinimum " + plain(xmin)) + " and at most " + (max != null ? "maximum " + plain(max)
                        : "below exclusiveMaximum " + plain(xmax)));
            }
            return;
        }
        BigDecimal lo = min;
        boolean loOpen = false;
        if (xmin != null && (lo == null || xmin.compareTo(lo) >= 0)) {
            lo = xmin;
            loOpen = true;
        }
        BigDecimal hi = max;
        boolean hiOpen = false;
        if (xmax != null && (hi == null || xmax.compareTo(hi) <= 0)) {
            hi = xmax;
            hiOpen = true;
        }
        if (lo != null && hi != null && (lo.compareTo(hi) > 0 || (lo.compareTo(hi) == 0 && (loOpen || hiOpen)))) {
            throw unsatisfiable(path, "no number is " + (loOpen ? "above exclusiveMinimum " : "at least minimum ") + plain(lo)
                    + " and " + (hiOpen ? "below exclusiveMaximum " : "at most maximum ") + plain(hi));
        }
    }

    private static void pair(JsonObject o, String path, String minKey, String maxKey, String what) {
        BigDecimal min = number(o, minKey);
        BigDecimal max = number(o, maxKey);
        if (min != null && max != null && min.compareTo(max) > 0) {
            throw unsatisfiable(path, minKey + " " + plain(min) + " is greater than " + maxKey + " " + plain(max));
        }
    }

    private static BigDecimal number(JsonObject o, String key) {
        var v = o.get(key);
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
            return null;  // absent, or not a number (the converter reports that itself)
        }
        try {
            return new BigDecimal(v.getAsJsonPrimitive().getAsString());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static String plain(BigDecimal d) {
        return d.stripTrailingZeros().toPlainString();
    }

    private static Violation unsatisfiable(String path, String why) {
        return new Violation("schema_unsatisfiable", "The JSON schema can never match at " + path + ": " + why + ".");
    }
}
