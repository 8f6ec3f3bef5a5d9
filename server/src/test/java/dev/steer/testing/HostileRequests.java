package dev.steer.testing;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Generates hostile requests across every route of the API (ApiServer's route table), as an attacker would send
 * them: malformed and truncated JSON, wrong types, huge, negative and extreme numbers, odd Unicode, path tricks,
 * unknown and missing fields, grammars and schemas built to hurt the parser, steers at impossible positions,
 * wrong or missing API keys, and raw HTTP that is malformed below JSON (chunked bodies, header lines, methods).
 * Seeded: the same seed gives the same requests, given the same ids from the server.
 *
 * <p>Generations are kept short (max_tokens mostly 1 to 8) so that thousands of requests run in minutes; what
 * would train (a valid fine-tuning job) filters on a tag no record has, so it fails at once instead of training.
 */
public final class HostileRequests {
    /** One request. {@code raw}: bytes written to the socket as they are (then method and path only describe it). */
    public record Request(String kind, String method, String path, String apiKey, byte[] body, String contentType, byte[] raw) {
        public String describe() {
            String b = body == null ? "" : new String(body, 0, Math.min(body.length, 200), StandardCharsets.UTF_8);
            return kind + " " + method + " " + path + (b.isEmpty() ? "" : " " + b);
        }
    }

    /** Ids the server handed out, for requests that target something real (a session to steer, a record to tag). */
    public interface Known {
        String session();

        String steer();

        String job();
    }

    private final Random r;
    private final String apiKey;
    private final String model;
    private final Known known;

    public HostileRequests(long seed, String apiKey, String model, Known known) {
        this.r = new Random(seed);
        this.apiKey = apiKey;
        this.model = model;
        this.known = known;
    }

    public Request next() {
        int p = r.nextInt(100);
        Request q;
        if (p < 19) {
            q = chat();
        } else if (p < 24) {
            q = responses();
        } else if (p < 32) {
            q = text();
        } else if (p < 46) {
            q = steer();
        } else if (p < 52) {
            q = stop();
        } else if (p < 66) {
            q = steerRecords();
        } else if (p < 76) {
            q = jobs();
        } else if (p < 84) {
            q = adapters();
        } else if (p < 93) {
            q = misc();
        } else {
            return rawHttp();
        }
        if (apiKey != null && r.nextInt(20) == 0) {
            // A missing, wrong, or almost right key: /v1 must refuse each with 401 before anything else happens.
            String key = pick("", "wrong", apiKey + "x", apiKey.substring(0, apiKey.length() - 1), " " + apiKey + "\u00e9");
            q = new Request(q.kind + "+badkey", q.method, q.path, key, q.body, q.contentType, null);
        }
        return q;
    }

    // ---- routes ----

    private Request chat() {
        List<String> f = new ArrayList<>();
        f.add(field("model", r.nextInt(10) == 0 ? pick(str(model + "@v1"), str(model + "@base"), str("nope"), str("")) : str(model)));
        f.add(field("messages", messages()));
        f.add(field("max_tokens", Integer.toString(1 + r.nextInt(8))));
        f.add(field("temperature", pick("0", "0.7", "1")));
        if (r.nextBoolean()) {
            f.add(field("stream", pick("true", "false")));
        }
        options(f);
        return post("chat", "/v1/chat/completions", f, List.of("model", "messages", "max_tokens", "temperature", "stream",
                "stop", "seed", "top_k", "top_p", "min_p", "logprobs", "top_logprobs", "n", "grammar", "response_format",
                "stream_options", "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty",
                "max_completion_tokens", "ignore_eos", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n"));
    }

    /** POST /v1/responses: its own fields (input, instructions, text.format, previous_response_id, tools) and the sampling ones. */
    private Request responses() {
        List<String> f = new ArrayList<>();
        f.add(field("model", r.nextInt(10) == 0 ? pick(str("nope"), str(""), "5") : str(model)));
        f.add(field("input", switch (r.nextInt(8)) {
            case 0 -> pick("[]", "5", "null", "{}", "[\"hi\"]", "[null]");
            case 1 -> "[{\"type\":" + pick("\"function_call\"", "\"item_reference\"", "5", "\"message\"") + ",\"role\":\"user\",\"content\":\"hi\"}]";
            case 2 -> "[{\"role\":\"user\",\"content\":" + pick("[{\"type\":\"input_image\",\"image_url\":\"x\"}]", "[{\"type\":\"input_text\"}]",
                    "[{\"type\":\"input_text\",\"text\":5}]", "[5]", "{}", "null", "[{\"type\":\"output_text\",\"text\":\"a\"}]") + "}]";
            case 3 -> "[{\"role\":" + pick("\"tool\"", "\"pirate\"", "5", "null") + ",\"content\":\"hi\"}]";
            case 4 -> messages();
            default -> str(pick("hi", "say something", unicode(), "x".repeat(3000)));
        }));
        f.add(field("max_output_tokens", r.nextInt(6) == 0 ? number() : Integer.toString(1 + r.nextInt(8))));
        f.add(field("temperature", pick("0", "0.7", "1")));
        if (r.nextBoolean()) {
            f.add(field("stream", pick("true", "false", "\"yes\"")));
        }
        if (r.nextInt(4) == 0) {
            f.add(field("instructions", pick(str("be brief"), "5", "null", "[]", str(unicode()))));
        }
        if (r.nextInt(4) == 0) {
            f.add(field("previous_response_id", pick(str("resp_" + "0".repeat(32)), str(session()), "5", str(""), str(fakeId()))));
        }
        if (r.nextInt(5) == 0) {
            String format = responseFormat().replace("\"json_schema\":{\"name\":\"x\",\"schema\":", "\"name\":\"x\",\"schema\":");
            f.add(field("text", pick("{\"format\":" + format + "}", "5", "{\"format\":5}", "{}", "{\"format\":{\"type\":\"json_schema\"}}")));
        }
        if (r.nextInt(10) == 0) {
            f.add(field("tools", pick("[]", "[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}]", "5", "{}")));
        }
        if (r.nextInt(5) == 0) {
            f.add(field("seed", number()));
        }
        return post("responses", "/v1/responses", f, List.of("model", "input", "instructions", "max_output_tokens", "temperature", "top_p",
                "stream", "text", "previous_response_id", "tools", "seed"));
    }

    private Request text() {
        List<String> f = new ArrayList<>();
        f.add(field("prompt", r.nextInt(8) == 0 ? pick("[" + str("hi") + "]", "[]", "[1,2]", "5", "null") : str(pick("hi", "Once", unicode()))));
        f.add(field("max_tokens", Integer.toString(1 + r.nextInt(8))));
        if (r.nextBoolean()) {
            f.add(field("logprobs", pick("0", "3", "5", "6", "-1", "true")));
        }
        options(f);
        return post("text", "/v1/completions", f, List.of("prompt", "max_tokens", "logprobs", "seed", "stop", "grammar", "echo", "suffix"));
    }

    private void options(List<String> f) {
        if (r.nextInt(4) == 0) {
            f.add(field("stop", pick(str("\n"), "[" + str("a") + "," + str("") + "]", "[" + String.join(",", repeat(str("x"), 17)) + "]", "[1]", "{}")));
        }
        if (r.nextInt(5) == 0) {
            f.add(field("seed", number()));
        }
        if (r.nextInt(6) == 0) {
            f.add(field(pick("top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "repeat_last_n",
                    "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n"), number()));
        }
        if (r.nextInt(6) == 0) {
            f.add(field("grammar", str(grammar())));
        }
        if (r.nextInt(8) == 0) {
            f.add(field("response_format", responseFormat()));
        }
        if (r.nextInt(10) == 0) {
            f.add(field("stream_options", pick("{\"include_usage\":true}", "{\"include_usage\":\"yes\"}", "[]", "null")));
        }
        if (r.nextInt(10) == 0) {
            f.add(field("logprobs", "true"));
            f.add(field("top_logprobs", pick("0", "5", "20", "21", "-1", "1e3")));
        }
    }

    private String messages() {
        int k = r.nextInt(12);
        return switch (k) {
            case 0 -> "[]";
            case 1 -> "[{\"content\":\"no role\"}]";
            case 2 -> "[{\"role\":" + pick("\"pirate\"", "5", "null", "[]", "\"\"") + ",\"content\":\"hi\"}]";
            case 3 -> "[{\"role\":\"user\",\"content\":" + pick("5", "null", "{}", "[{\"type\":\"image_url\"}]",
                    "[{\"type\":\"text\",\"text\":\"hi\"}]", "[{\"text\":5}]") + "}]";
            case 4 -> "[{\"role\":\"assistant\",\"content\":\"prefill\"}]";
            case 5 -> "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"tool_calls\":" + pick("[]", "5",
                    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]", "[{\"function\":{}}]") + "}]";
            case 6 -> "[" + String.join(",", repeat("{\"role\":\"user\",\"content\":\"hi\"}", 200)) + "]";
            case 7 -> "\"hi\"";
            case 8 -> "[{\"role\":\"user\",\"content\":" + str(unicode()) + ",\"pad\":" + str("x".repeat(r.nextInt(20_000))) + "}]";
            default -> "[{\"role\":\"user\",\"content\":" + str(pick("hi", "say something", unicode(), "x".repeat(3000))) + "}]";
        };
    }

    private Request steer() {
        List<String> f = new ArrayList<>();
        int k = r.nextInt(6);
        if (k < 4) {
            f.add(field("at", k == 0 ? number() : Integer.toString(r.nextInt(k == 1 ? 3 : 12))));
        } else if (k == 4) {
            f.add(field("at_char", pick("0", "3", "-1", "1e9", "\"2\"", Integer.toString(r.nextInt(40)))));
        } else {
            f.add(field("at", "1"));
            f.add(field("at_char", "1"));
        }
        f.add(field("text", r.nextInt(6) == 0 ? pick("\"\"", "5", "null", str("x ".repeat(400)), str("\u0000"))
                : str(pick(" X", " no,", unicode(), " {\"a\":1}"))));
        if (r.nextInt(3) == 0) {
            f.add(field("max_tokens", pick("1", "4", "0", "-5", "1e400", "\"4\"")));
        } else {
            f.add(field("max_tokens", Integer.toString(1 + r.nextInt(6))));
        }
        return post("steer", "/v1/chat/completions/" + session() + "/steer", f, List.of("at", "at_char", "text", "max_tokens"));
    }

    private Request stop() {
        String path = "/v1/chat/completions/" + session() + "/stop";
        if (r.nextInt(4) == 0) {
            return new Request("stop", "POST", path, apiKey, new byte[0], "application/json", null);
        }
        List<String> f = new ArrayList<>();
        f.add(field("at", r.nextBoolean() ? Integer.toString(r.nextInt(6)) : number()));
        return post("stop", path, f, List.of("at"));
    }

    private Request steerRecords() {
        String id = r.nextInt(4) == 0 ? fakeId() : known.steer();
        return switch (r.nextInt(7)) {
            case 0 -> get("steers.list", "/v1/steers" + query("session_id", "tag", "model", "since", "until", "include_excluded"));
            case 1 -> get("steers.export", "/v1/steers/export?format=" + pick("trl_dpo", "trl_sft", "openai_sft", "openai_dpo", "csv", "", "%00")
                    + query("since", "tag", "include_excluded").replace('?', '&'));
            case 2 -> get("steers.get", "/v1/steers/" + id);
            case 3 -> new Request("steers.delete", "DELETE", "/v1/steers/" + (r.nextInt(3) == 0 ? id : fakeId()), apiKey, null, null, null);
            case 4 -> post("steers.tags", "/v1/steers/" + id + "/tags", List.of(field("tags", pick("[\"a\"]", "[\"\"]", "\"one\"", "[5]", "[]",
                    "[" + String.join(",", repeat(str("t"), 70)) + "]", "[" + str("x".repeat(65)) + "]", "[" + str(unicode()) + "]"))), List.of("tags"));
            case 5 -> post("steers.exclude", "/v1/steers/" + id + "/exclude", List.of(field("excluded", pick("true", "false", "1", "\"yes\"", "null"))),
                    List.of("excluded"));
            default -> get("steers.get", "/v1/steers/" + pathTrick());
        };
    }

    private Request jobs() {
        String id = r.nextInt(3) == 0 ? fakeId() : known.job();
        return switch (r.nextInt(6)) {
            case 0, 1 -> {
                List<String> f = new ArrayList<>();
                f.add(field("model", r.nextInt(6) == 0 ? str("other") : str(model)));
                f.add(field("method", pick(str("sft"), str("dpo"), str("sft+dpo"), "{\"type\":\"dpo\"}", str("ppo"), "5")));
                f.add(field("hyperparameters", "{" + String.join(",", List.of(
                        field(pick("n_epochs", "batch_size", "learning_rate", "warmup_steps", "rank", "alpha", "target_modules", "guard_weight", "lora_layers", "ema_decay", "first_token_weight"),
                                r.nextBoolean() ? number() : pick(str("auto"), "[\"q\"]", "[]", "{}")))) + "}"));
                // The filter matches no record: a job that passes validation fails at once instead of training.
                f.add(field("filters", "{\"tag\":" + str("fuzz-nomatch-" + r.nextInt(1000)) + "}"));
                if (r.nextBoolean()) {
                    f.add(field("eval", "{" + field(pick("auto_activate", "max_drift", "max_changed", "max_degenerate", "canary"),
                            r.nextBoolean() ? number() : pick("true", str("x"), "[]")) + "}"));
                }
                yield post("jobs.create", "/v1/fine_tuning/jobs", f, List.of("model", "method", "hyperparameters", "eval"));
            }
            case 2 -> get("jobs.list", "/v1/fine_tuning/jobs" + pick("", "?limit=-1", "?after=" + fakeId(), "?limit=1e99"));
            case 3 -> get("jobs.get", "/v1/fine_tuning/jobs/" + (r.nextBoolean() ? id : pathTrick()));
            // A live event stream follows a job until it ends: only for ids that do not exist, so it cannot hang here.
            case 4 -> get("jobs.events", "/v1/fine_tuning/jobs/" + id + "/events" + (id.startsWith("ftjob-fuzz") ? pick("", "?stream=true") : ""));
            default -> post("jobs.cancel", "/v1/fine_tuning/jobs/" + id + "/cancel", List.of(), List.of());
        };
    }

    private Request adapters() {
        String v = pick("v1", "v0", "v-1", "v99999999999999999999", "base", "1", "%2e%2e", "v1%00", "V1", "v" + "9".repeat(400), "\u00e9");
        return switch (r.nextInt(5)) {
            case 0 -> get("adapters.list", "/v1/adapters");
            case 1 -> get("adapters.get", "/v1/adapters/" + v);
            case 2 -> new Request("adapters.delete", "DELETE", "/v1/adapters/" + v, apiKey, null, null, null);
            case 3 -> post("adapters.activate", "/v1/adapters/" + v + "/activate", List.of(), List.of());
            default -> post("adapters.rollback", "/v1/adapters/rollback", List.of(), List.of());
        };
    }

    private Request misc() {
        return switch (r.nextInt(8)) {
            case 0 -> get("health", "/health");
            case 1 -> get("metrics", "/metrics");
            case 2 -> get("models", "/v1/models");
            case 3 -> get("models.get", "/v1/models/" + pick(model, model + "@v1", "x", pathTrick()));
            case 4 -> new Request("wrong-method", pick("PUT", "PATCH", "DELETE", "GET"), pick("/v1/chat/completions", "/v1/completions",
                    "/v1/adapters/rollback", "/v1/models"), apiKey, null, null, null);
            case 5 -> get("unknown", pick("/v2/models", "/v1", "/", "/v1/steers/export/x", "/" + "a".repeat(3000)));
            case 6 -> new Request("wrong-type", "POST", "/v1/chat/completions", apiKey,
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}".getBytes(StandardCharsets.UTF_8),
                    pick("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1"), null);
            default -> get("path-trick", pathTrick());
        };
    }

    // ---- raw HTTP, below JSON ----

    private Request rawHttp() {
        String auth = apiKey == null ? "" : "Authorization: Bearer " + apiKey + "\r\n";
        String head = "Host: localhost\r\n" + auth + "Connection: close\r\n";
        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}";
        String req = switch (r.nextInt(10)) {
            case 0 -> "POST /v1/chat/completions HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n";
            case 1 -> "POST /v1/chat/completions HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nxx\r\n0\r\n\r\n";
            case 2 -> "POST /v1/chat/completions HTTP/1.1\r\n" + head + "Content-Length: " + pick("-1", "abc", "1e3", "99999999999999999999") + "\r\n\r\n" + body;
            case 3 -> "GET /v1/models HTTP/1.1\r\n" + head + "X-Big: " + "a".repeat(20_000) + "\r\n\r\n";
            case 4 -> "GET /v1/models HTTP/1.1\r\n" + head + "no colon here\r\n\r\n";
            case 5 -> pick("BREW", "GET\u0000", "TRACE", "CONNECT") + " /v1/models HTTP/1.1\r\n" + head + "\r\n";
            case 6 -> "GET " + pick("/v1/steers/%ZZ", "/v1/steers/a b", "/v1/models/\u0000", "http://evil.example/v1/models", "*", "/v1/steers/\u00e9")
                    + " HTTP/1.1\r\n" + head + "\r\n";
            case 7 -> "GET /v1/models HTTP/" + pick("9.9", "1.x", "0.9") + "\r\n" + head + "\r\n";
            case 8 -> "POST /v1/chat/completions HTTP/1.1\r\n" + head + "Content-Type: application/json\r\nContent-Length: "
                    + (body.length() + 8) + "\r\n\r\n" + body + "\r\n\r\n\r\n\r\n";
            default -> "POST /v1/chat/completions/" + session() + "/steer HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n0\r\n\r\n";
        };
        return new Request("raw", "RAW", req.substring(0, req.indexOf(' ') + Math.min(40, req.length() - req.indexOf(' '))), apiKey, null, null,
                req.getBytes(StandardCharsets.ISO_8859_1));
    }

    // ---- bodies ----

    /**
     * A POST of the fields, or of them mutated: one field of a wrong type or an extreme value, one dropped, one
     * unknown (sometimes large) added, or the text itself broken.
     */
    private Request post(String kind, String path, List<String> fields, List<String> names) {
        List<String> f = new ArrayList<>(fields);
        int m = r.nextInt(12);
        String json;
        if (m == 0 && !f.isEmpty()) {
            f.remove(r.nextInt(f.size()));
        } else if (m == 1 && !names.isEmpty()) {
            f.add(field(names.get(r.nextInt(names.size())), value()));  // a repeated key: the last one counts
        } else if (m == 2 && !names.isEmpty()) {
            String name = names.get(r.nextInt(names.size()));
            f.removeIf(x -> x.startsWith(str(name) + ":"));
            f.add(field(name, value()));
        } else if (m == 3) {
            f.add(field(pick("pad", "unknown", "__proto__", "\u00e9t\u00e9", ""), r.nextBoolean() ? value() : str("p".repeat(r.nextInt(50_000)))));
        }
        json = "{" + String.join(",", f) + "}";
        if (m == 4) {
            json = broken(json);
        } else if (m == 5) {
            json = junk();
        }
        String type = r.nextInt(30) == 0 ? pick("text/plain", "") : "application/json";
        return new Request(kind, "POST", path, apiKey, json.getBytes(m == 6 ? StandardCharsets.UTF_16 : StandardCharsets.UTF_8), type, null);
    }

    private Request get(String kind, String path) {
        return new Request(kind, "GET", path, apiKey, null, null, null);
    }

    /** The text of valid JSON, broken: cut short, a byte changed, a quote or bracket removed, invalid UTF-8. */
    private String broken(String json) {
        if (json.length() < 2) {
            return "{";
        }
        int at = r.nextInt(json.length());
        return switch (r.nextInt(5)) {
            case 0 -> json.substring(0, at);
            case 1 -> json.substring(0, at) + (char) r.nextInt(128) + json.substring(at + 1);
            case 2 -> json.replaceFirst("\"", "");
            case 3 -> json.replaceFirst("[\\]}]", "");
            default -> json.substring(0, at) + "\udc00\ud800\uffff" + json.substring(at);
        };
    }

    /** Bodies that are not the object a route reads. */
    private String junk() {
        return pick("", " ", "null", "[]", "[{}]", "\"{}\"", "5", "true", "{}", "{\"a\":", "{\"a\":1}}", "{'a':1}", "{a:1}",
                "[".repeat(5000) + "]".repeat(5000), "{\"a\":".repeat(3000) + "1" + "}".repeat(3000), "1" + "0".repeat(5000),
                "{\"messages\":NaN}", "\u0000", "\ufeff{}", "{\"x\":\"\\ud800\"}", "{\"x\":\"\\u00zz\"}", "{} {}", "/* */ {}");
    }

    /** Any JSON value, mostly the wrong type or an extreme. */
    private String value() {
        return switch (r.nextInt(8)) {
            case 0 -> "null";
            case 1 -> pick("true", "false");
            case 2, 3 -> number();
            case 4 -> str(pick("", "1", "true", unicode(), "x".repeat(r.nextInt(5000))));
            case 5 -> pick("[]", "[1,\"a\",null]", "[[[[[]]]]]", "[" + str("a") + "]");
            case 6 -> pick("{}", "{\"a\":{}}", "{\"type\":\"text\"}");
            default -> pick("NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "0x10", "1e", "--1");
        };
    }

    private String number() {
        return pick("0", "-1", "1", "2", "-0", "0.5", "1.5", "2147483647", "2147483648", "-2147483649", "9223372036854775807",
                "9223372036854775808", "-9223372036854775809", "1e308", "-1e308", "1e309", "4.9e-324", "1e-20000", "0e99999",
                "1e99999", "123456789012345678901234567890", "1" + "0".repeat(400), "0." + "0".repeat(400) + "1", "1E+2", "-1e-5",
                Integer.toString(r.nextInt()), Long.toString(r.nextLong()), Double.toString(r.nextGaussian() * 1e6));
    }

    /** Strings that trouble text handling: multi-byte characters, combining marks, control characters, lone surrogates. */
    private String unicode() {
        return pick("h\u00e9llo", "\u4f60\u597d", "\ud83d\ude00\ud83d\udc4d", "e\u0301\u0301\u0301", "\u202e\u202dabc", "\u0000\u0001\u001f",
                "\ufeff", "\uffff\ufffe", "\ud800", "\udc00x", "line\r\nbreak", "\\", "</s><|im_end|><|endoftext|>", "{{ raise('x') }}",
                "\u0085\u2028\u2029", "\u00a0".repeat(100));
    }

    /** Grammars: fine, broken, and those issue 16 found that crash, wedge or exhaust llama.cpp unless refused. */
    private String grammar() {
        return switch (r.nextInt(14)) {
            case 0 -> "root ::= \"a\" | \"b\"";
            case 1 -> "root ::= [a-z]+";
            case 2 -> "root ::= " + "(".repeat(200 + r.nextInt(3000)) + "\"a\"" + ")".repeat(200 + r.nextInt(3000));
            case 3 -> "root ::= " + String.join(" ", repeat("\"a\"?", 17 + r.nextInt(300)));
            case 4 -> "root ::= \"a\"{" + (2 + r.nextInt(5)) + "," + r.nextInt(2) + "}";
            case 5 -> "root ::= \"a\"{" + pick("2001", "99999999999999999999", "-1", "0,0", "1,", ",") + "}";
            case 6 -> "root ::= [z-a]";
            case 7 -> "root ::= x\nx ::= y x \"a\"\ny ::= \"c\"?";
            case 8 -> "root ::= (\"a\"?)*";
            case 9 -> "root ::= undefined";
            case 10 -> "root ::= \"unterminated";
            case 11 -> chain(100 + r.nextInt(2000));
            case 12 -> "root ::= " + String.join(" | ", repeat("\"a\"", 1000 + r.nextInt(200)));
            default -> pick("", "::=", "root ::= \"\\x\"", "root ::= [\\u0000-\\uFFFF]*", "root ::= \"\u00e9\"+", unicode());
        };
    }

    private static String chain(int n) {
        StringBuilder g = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < n; i++) {
            g.append("r").append(i).append(" ::= r").append(i + 1).append(" \"a\"\n");
        }
        return g.append("r").append(n).append(" ::= \"b\"\n").toString();
    }

    private String responseFormat() {
        String schema = switch (r.nextInt(9)) {
            case 0 -> "{\"type\":\"string\",\"minLength\":5,\"maxLength\":1}";
            case 1 -> "{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}";
            case 2 -> "{\"type\":\"array\",\"items\":".repeat(200) + "{}" + "}".repeat(200);
            case 3 -> "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]}";
            case 4 -> "{\"$ref\":\"#\"}";
            case 5 -> "{\"type\":\"string\",\"pattern\":\"" + "(a|b)*".repeat(50) + "\"}";
            case 6 -> "{\"enum\":[" + String.join(",", repeat("\"v\"", 1500)) + "]}";
            case 7 -> "{\"type\":" + pick("5", "\"nope\"", "[]", "null") + "}";
            default -> "{\"type\":\"string\",\"maxLength\":" + number() + "}";
        };
        return pick("{\"type\":\"json_object\"}", "{\"type\":\"text\"}", "{\"type\":\"xml\"}", "5", "{}",
                "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":" + schema + "}}",
                "{\"type\":\"json_schema\",\"json_schema\":" + schema + "}");
    }

    // ---- ids and paths ----

    private String session() {
        return r.nextInt(4) == 0 ? pick(fakeId(), "chatcmpl-" + "0".repeat(32), "cmpl-x", pathTrick()) : known.session();
    }

    private String fakeId() {
        return pick("x", "steer-0", "ftjob-fuzz" + r.nextInt(100), "chatcmpl-fuzz", "%20", "-1", "null", "a".repeat(2000), "%C3%A9", "%F0%9F%98%80");
    }

    private String pathTrick() {
        return pick("..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fsteers.db", "%00", "a%00b", ".%2e/", "%252e%252e", "x;y",
                "x?y=1", "x#frag", "%C0%AE%C0%AE", "~root", "....//....//", "%5C..%5C..", "*", "%ff%fe");
    }

    private String query(String... names) {
        StringBuilder q = new StringBuilder();
        for (String n : names) {
            if (r.nextInt(3) == 0) {
                q.append(q.isEmpty() ? "?" : "&").append(n).append("=").append(pick("1", "-1", "abc", "9223372036854775808", "", "%00",
                        "true", "false", "1e3", known.session()));
            }
        }
        return q.toString();
    }

    // ---- helpers ----

    private static String field(String name, String json) {
        return str(name) + ":" + json;
    }

    /** A JSON string literal; lone surrogates and control characters escaped as \\uXXXX, as a hostile client would. */
    static String str(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || Character.isSurrogate(c)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    private static List<String> repeat(String s, int n) {
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(s);
        }
        return out;
    }

    @SafeVarargs
    private <T> T pick(T... options) {
        return options[r.nextInt(options.length)];
    }
}
