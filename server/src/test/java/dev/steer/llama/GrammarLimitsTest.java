package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import dev.steer.testing.TestModels;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The GBNF and JSON schema checks that run before llama.cpp sees a grammar. */
@Timeout(60)
class GrammarLimitsTest {

    private static String violation(String gbnf) {
        return assertThrows(GrammarLimits.Violation.class, () -> GrammarLimits.check(gbnf), gbnf.length() > 200
                ? gbnf.substring(0, 200) + "..." : gbnf).code();
    }

    private static String schemaViolation(String schema) {
        return assertThrows(GrammarLimits.Violation.class,
                () -> GrammarLimits.checkJsonSchema(JsonParser.parseString(schema)), schema).code();
    }

    private static String times(int n, String s, String sep) {
        return String.join(sep, Collections.nCopies(n, s));
    }

    // ---- the reproductions of issue 16 ----

    @Test
    void deeplyNestedGroupsAreRefusedBeforeTheParserRecursesIntoThem() {
        // 3,000 levels crash llama.cpp's parser (SIGSEGV); never hand this to native code in a test
        assertEquals("grammar_too_deep", violation("root ::= " + "(".repeat(3000) + "\"a\"" + ")".repeat(3000)));
        assertEquals("grammar_too_deep", violation("root ::= " + "(".repeat(GrammarLimits.MAX_DEPTH + 1) + "\"a\""
                + ")".repeat(GrammarLimits.MAX_DEPTH + 1)));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= " + "(".repeat(GrammarLimits.MAX_DEPTH) + "\"a\""
                + ")".repeat(GrammarLimits.MAX_DEPTH)));
    }

    @Test
    void longChainsOfLeftmostReferencesAreRefused() {
        // 10,000 rules each starting with the next crash llama.cpp's left-recursion check
        StringBuilder b = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 10_000; i++) {
            b.append("r").append(i).append(" ::= r").append(i + 1).append('\n');
        }
        b.append("r10000 ::= \"a\"\n");
        assertEquals("grammar_too_deep", violation(b.toString()));
        StringBuilder within = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < GrammarLimits.MAX_CHAIN - 2; i++) {
            within.append("r").append(i).append(" ::= r").append(i + 1).append('\n');
        }
        within.append("r").append(GrammarLimits.MAX_CHAIN - 2).append(" ::= \"a\"\n");
        assertDoesNotThrow(() -> GrammarLimits.check(within.toString()));
        // the same chain, but each rule starts with a character: not recursion at all, only rules
        StringBuilder ok = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 10_000; i++) {
            ok.append("r").append(i).append(" ::= \"a\" r").append(i + 1).append('\n');
        }
        ok.append("r10000 ::= \"a\"\n");
        assertDoesNotThrow(() -> GrammarLimits.check(ok.toString()));
    }

    @Test
    void manyOptionalItemsInARowAreRefused() {
        assertEquals("grammar_too_many_optional_items", violation("root ::= " + times(300, "\"a\"?", " ")));
        assertEquals("grammar_too_many_optional_items",
                violation("root ::= " + times(GrammarLimits.MAX_OPTIONAL_RUN + 1, "[a-z]*", " ")));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= " + times(GrammarLimits.MAX_OPTIONAL_RUN, "\"a\"?", " ")));
        // hidden in optional groups: 16 groups of 16
        assertEquals("grammar_too_many_optional_items",
                violation("root ::= " + times(16, "(" + times(16, "\"a\"?", " ") + ")", " ")));
        // a required item breaks the row
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= " + times(40, "\"a\"? \"b\"? \",\"", " ")));
        // a bounded repetition is one nested item, not a row
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= \"a\"{0,300}"));
    }

    @Test
    void aRepetitionWhoseMaximumIsBelowItsMinimumIsRefused() {
        // llama.cpp computes max - min in unsigned arithmetic and allocates rules until memory runs out
        assertEquals("grammar_invalid_repetition", violation("root ::= \"a\"{5,2}"));
        assertEquals("grammar_invalid_repetition", violation("root ::= (\"a\" | \"b\"){ 3 , 0 }"));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= \"a\"{2,5} \"b\"{3} \"c\"{0,} \"d\"{1,1}"));
        assertEquals("grammar_repetition_too_large", violation("root ::= \"a\"{2001}"));
        assertEquals("invalid_grammar", violation("root ::= \"a\"{99999999999999999999999}"));
        // a maximum above 2,000 means no maximum to llama.cpp: one rule, allowed
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= \"a\"{0,5000}"));
    }

    @Test
    void emptyCharacterRangesAreRefused() {
        assertEquals("grammar_invalid_char_range", violation("root ::= [z-a]"));
        assertEquals("grammar_invalid_char_range", violation("root ::= [^a-z9-0]"));
        assertEquals("grammar_invalid_char_range", violation("root ::= [\\u00ff-\\x10]"));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= [a-a] [a-] [-z] [\\x00-\\U0010FFFF] [é-ü]"));
    }

    // ---- the other limits ----

    @Test
    void sizeRulesElementsAlternativesAndFanoutAreBounded() {
        assertEquals("grammar_too_large", violation("root ::= \"" + "a".repeat(GrammarLimits.MAX_BYTES) + "\""));
        // a small text that expands to 60 * 1,000 rules
        assertEquals("grammar_too_many_rules", violation("root ::= " + times(60, "\"x\"{0,1000}", " ")));
        // a small text that expands to 50,000 * 2,000 elements
        assertEquals("grammar_too_large", violation("root ::= \"" + "b".repeat(50_000) + "\"{2000}"));
        assertEquals("grammar_too_large", violation("root ::= \"ab\"{2000}{2000}"));
        assertEquals("grammar_too_many_alternatives", violation("root ::= " + times(GrammarLimits.MAX_ALTERNATIVES + 1, "\"a\"", " | ")));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= " + times(GrammarLimits.MAX_ALTERNATIVES, "\"a\"", " | ")));
        // nested alternatives multiply: 40 * 40 * 40 parse positions at the start
        String alts = times(40, "b \"z\"", " | ");
        assertEquals("grammar_too_ambiguous", violation("root ::= a\na ::= " + alts + "\nb ::= " + times(40, "c \"z\"", " | ")
                + "\nc ::= " + times(40, "\"x\"", " | ") + "\n"));
    }

    @Test
    void leftRecursionIsRefusedEvenWhereLlamaCppsOwnCheckMissesIt() {
        assertEquals("grammar_left_recursion", violation("root ::= root \"a\" | \"b\""));
        // y is empty only through y's optional item: llama.cpp's check misses this, and its parse stack then grows forever
        assertEquals("grammar_left_recursion", violation("root ::= x\nx ::= y x \"a\" | \"b\"\ny ::= \"c\"?\n"));
        // a star of something that may be empty is not: its loop rule ends with itself (GrammarBudgetTest runs one)
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= (\"a\"?)*"));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= (x? \" \"?)+ \"b\"\nx ::= \"a\""));
        assertDoesNotThrow(() -> GrammarLimits.check("root ::= \"(\" root \")\" | \"x\""));
    }

    @Test
    void syntaxErrorsAreReportedWithAPosition() {
        assertDoesNotThrow(() -> GrammarLimits.check(""), "llama.cpp takes an empty grammar for none");
        for (String bad : List.of("# only a comment", "root ::= nope", "root ::= \"a", "root ::= (\"a\"", "root ::= \"a\")",
                "root = \"a\"", "root ::= [a-", "root ::= \"\\q\"", "root ::= *", "root ::= \"a\" | *", "root ::= \"\"?",
                "root ::= \"a\"{x}", "root ::= \"a\"{1,2", "notroot ::= \"a\"", "root ::= \"a\"\n| \"b\"", "root ::= \"a\"\u0000 junk",
                "root ::= \"\\x4\"", "root ::= <[12", "root ::= \"a\"{0}?")) {
            String code = violation(bad);
            assertEquals("invalid_grammar", code, bad);
        }
        var e = assertThrows(GrammarLimits.Violation.class, () -> GrammarLimits.check("root ::= \"a\"\nx ::= (\"b\" |"));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
    }

    /** The scanner follows llama.cpp's parser: on syntax, both accept or both refuse. */
    @Test
    void acceptsAndRefusesTheSameSyntaxAsLlamaCpp() {
        LlamaModel model = TestModels.tinyLlama();
        List<String> grammars = new ArrayList<>(List.of(
                "root ::= \"a\"", "root ::= [a-z ]+", "root ::= \"a\" | \"b\" |", "root ::= (\"a\" | ) \"b\"",
                "root ::= \"a\"  # comment\n", "root ::=\n  \"a\"\n  # c\nx ::= \"b\"", "root ::= (\n\"a\"\n|\n\"b\"\n)",
                "root ::= x x\nx ::= \"x\"\nx ::= \"y\"", "root ::= \"\\x41\\u00e9\\U0001F600\\t\\n\\r\\\\\\\"\\[\\]\\-\"",
                "root ::= [^\\]\\[\"] . <[3]> !<[4]>", "root ::= \"a\"{0}", "root ::= \"\" \"a\"", "root ::= [] \"a\"",
                "root ::= \"a\"{2}{3}", "root ::= (\"a\"){ 2 , }", "root ::= \"a\"??", "root ::= \"a\"\r\nx ::= \"b\"\r\n",
                "root ::= x-y\nx-y ::= \"1\"", "root ::= [a-]", "root ::= \"é\"+",
                // refused by both
                "root ::= nope", "root ::= \"a", "root ::= (\"a\"", "root ::= \"a\")", "root = \"a\"", "root ::= *",
                "root ::= \"\"?", "root ::= \"a\"{x}", "root ::= \"a\"{1,2", "notroot ::= \"a\"", "root ::= \"a\"\n| \"b\"",
                "root ::= \"\\q\"", "root ::= \"\\x4\"", "root ::= <[12", "root ::= \"a\"{0}?", "", "root ::= \"a\" \"b\" )",
                "root ::= [a-z", "root ::= root \"a\" | \"b\"", "root ::= \"a\"{2001}"));
        for (String g : grammars) {
            boolean ours;
            try {
                GrammarLimits.check(g);
                ours = true;
            } catch (GrammarLimits.Violation e) {
                ours = false;
            }
            boolean theirs;
            try (LlamaSampler s = LlamaSampler.createUnchecked(model, LlamaSampler.Params.greedy().withGrammar(g))) {
                theirs = true;
            } catch (IllegalArgumentException e) {
                theirs = false;
            }
            assertEquals(theirs, ours, "llama.cpp " + (theirs ? "accepts" : "refuses") + ": " + g);
        }
    }

    // ---- JSON schemas ----

    /** Realistic schemas, as OpenAI clients send them: their generated GBNF is within every limit. */
    @Test
    void realJsonSchemasPass() {
        for (String schema : realJsonSchemas()) {
            assertDoesNotThrow(() -> GrammarLimits.checkJsonSchema(JsonParser.parseString(schema)), schema);
            String gbnf = Grammars.fromJsonSchema(schema);
            assertDoesNotThrow(() -> GrammarLimits.check(gbnf), () -> schema + "\n->\n" + gbnf);
        }
    }

    /** Schemas as clients send them, up to OpenAI's own limits (also GrammarBudgetTest's). */
    static List<String> realJsonSchemas() {
        List<String> schemas = new ArrayList<>(List.of(
                "{\"type\": \"object\"}",
                """
                {"type": "object", "properties": {
                   "name": {"type": "string", "pattern": "^[a-z]{1,6}$"},
                   "count": {"type": "integer", "minimum": 0, "maximum": 99},
                   "color": {"enum": ["red", "green"]}},
                 "required": ["name", "count", "color"], "additionalProperties": false}
                """,
                """
                {"type": "object", "properties": {
                   "steps": {"type": "array", "items": {"type": "object", "properties": {
                       "explanation": {"type": "string"}, "output": {"type": "string"}},
                       "required": ["explanation", "output"], "additionalProperties": false}},
                   "final_answer": {"type": "string"}},
                 "required": ["steps", "final_answer"], "additionalProperties": false}
                """,
                """
                {"$defs": {"node": {"type": "object", "properties": {
                    "value": {"type": "number"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                    "required": ["value"]}},
                 "anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}
                """,
                """
                {"type": "object", "properties": {
                   "id": {"type": "string", "format": "uuid"}, "when": {"type": "string", "format": "date-time"},
                   "tags": {"type": "array", "items": {"type": "string", "maxLength": 32}, "minItems": 1, "maxItems": 10},
                   "score": {"type": "integer", "exclusiveMinimum": -100, "exclusiveMaximum": 100},
                   "ratio": {"type": "number", "minimum": 0, "maximum": 1},
                   "summary": {"type": "string", "minLength": 10, "maxLength": 500},
                   "notes": {"type": "string", "maxLength": 10000},
                   "kind": {"type": ["string", "null"]}}}
                """));
        // a wide object: 300 properties, a third optional, some with maxLength
        StringBuilder wide = new StringBuilder("{\"type\": \"object\", \"properties\": {");
        StringBuilder required = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            wide.append(i == 0 ? "" : ", ").append("\"field_").append(i).append("\": ")
                    .append(i % 3 == 0 ? "{\"type\": \"string\", \"maxLength\": 200}" : i % 3 == 1 ? "{\"type\": \"integer\"}"
                            : "{\"type\": \"boolean\"}");
            if (i % 3 != 2) {
                required.append(required.isEmpty() ? "" : ", ").append("\"field_").append(i).append('"');
            }
        }
        wide.append("}, \"required\": [").append(required).append("]}");
        schemas.add(wide.toString());
        // 600 optional properties: llama.cpp's grammar for them is a chain of 600 rules, each starting with the next
        StringBuilder optional = new StringBuilder("{\"type\": \"object\", \"properties\": {");
        for (int i = 0; i < 600; i++) {
            optional.append(i == 0 ? "" : ", ").append("\"opt_").append(i).append("\": {\"type\": \"string\"}");
        }
        schemas.add(optional.append("}}").toString());
        // OpenAI's maximum of 5,000 properties (strict mode: all required)
        StringBuilder many = new StringBuilder("{\"type\": \"object\", \"properties\": {");
        StringBuilder all = new StringBuilder();
        for (int i = 0; i < 5000; i++) {
            many.append(i == 0 ? "" : ", ").append("\"property_").append(i).append("\": {\"type\": \"")
                    .append(i % 2 == 0 ? "string" : "number").append("\"}");
            all.append(i == 0 ? "" : ", ").append("\"property_").append(i).append('"');
        }
        schemas.add(many.append("}, \"required\": [").append(all).append("], \"additionalProperties\": false}").toString());
        // an enum of OpenAI's maximum of 1,000 values
        StringBuilder values = new StringBuilder();
        for (int i = 0; i < 1000; i++) {
            values.append(i == 0 ? "" : ", ").append("\"value number ").append(i).append('"');
        }
        schemas.add("{\"type\": \"object\", \"properties\": {\"choice\": {\"enum\": [" + values + "]}}, \"required\": [\"choice\"]}");
        // ten levels of nested objects
        String nested = "{\"type\": \"string\"}";
        for (int i = 0; i < 10; i++) {
            nested = "{\"type\": \"object\", \"properties\": {\"level" + i + "\": " + nested + ", \"x\": {\"type\": \"integer\"}},"
                    + " \"required\": [\"level" + i + "\"]}";
        }
        schemas.add(nested);
        return schemas;
    }

    @Test
    void schemasThatCanNeverMatchAreRefused() {
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 1}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"array\", \"minItems\": 3, \"maxItems\": 2}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 1}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"integer\", \"exclusiveMinimum\": 1, \"exclusiveMaximum\": 2}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"integer\", \"minimum\": 1.5, \"maximum\": 1.9}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"number\", \"minimum\": 1, \"exclusiveMaximum\": 1}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"object\","
                + " \"properties\": {\"b\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 1}}}}}"));
        assertEquals("schema_unsatisfiable", schemaViolation("{\"anyOf\": [{\"type\": \"integer\", \"minimum\": 3, \"maximum\": -3}]}"));
        var e = assertThrows(GrammarLimits.Violation.class, () -> GrammarLimits.checkJsonSchema(JsonParser.parseString(
                "{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"minLength\": 5, \"maxLength\": 1}}}")));
        assertTrue(e.getMessage().contains("#/properties/name") && e.getMessage().contains("minLength 5"), e.getMessage());
        // fine: equal bounds, bounds only on one side, and bounds inside data (enum, const, default)
        for (String ok : List.of("{\"type\": \"string\", \"minLength\": 3, \"maxLength\": 3}", "{\"type\": \"integer\", \"minimum\": 5}",
                "{\"type\": \"number\", \"minimum\": 1.5, \"maximum\": 1.5}", "{\"type\": \"integer\", \"minimum\": 1.5, \"maximum\": 2}",
                "{\"enum\": [{\"minLength\": 5, \"maxLength\": 1}]}", "{\"const\": {\"minimum\": 2, \"maximum\": 1}}",
                "{\"type\": \"object\", \"default\": {\"minItems\": 9, \"maxItems\": 0}}",
                "{\"type\": \"object\", \"properties\": {\"minLength\": {\"type\": \"integer\"}, \"maxLength\": {\"type\": \"integer\"}}}")) {
            assertDoesNotThrow(() -> GrammarLimits.checkJsonSchema(JsonParser.parseString(ok)), ok);
        }
    }

    @Test
    void deeplyNestedSchemasAreRefused() {
        String deep = "{\"type\": \"string\"}";
        for (int i = 0; i < 200; i++) {
            deep = "{\"type\": \"array\", \"items\": " + deep + "}";
        }
        assertEquals("schema_too_deep", schemaViolation(deep));
    }

    /** Without the checks, what the converter makes of an unsatisfiable schema is a grammar the GBNF checks refuse. */
    @Test
    void theGbnfOfAnUnsatisfiableSchemaIsRefusedToo() {
        assertEquals("grammar_invalid_repetition",
                violation(Grammars.fromJsonSchema("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 1}")));
        assertEquals("grammar_invalid_repetition",
                violation(Grammars.fromJsonSchema("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 5, \"maxItems\": 2}")));
    }
}
