// dev.steer.llama.ChatTemplates: the model's Jinja chat template, rendered by llama.cpp's `common` (the same code
// llama-server uses), so that prompts match what the model was trained on.
#include "model.h"

#include "chat.h"
#include "chat-peg-parser.h"
#include "common.h"
#include "json-schema-to-grammar.h"
#include "peg-parser.h"
#include "json.h"

using namespace steer;

namespace {

// Tool calls for a template that has none (SmolLM2's ChatML): llama.cpp's common renders tools only through
// a template that knows them, and gives no grammar otherwise (llama-server then ignores tools). Here the tools are
// described in the system message in the Hermes/Qwen2.5 wording, calls are written as
// <tool_call>{"name": ..., "arguments": {...}}</tool_call>, and earlier calls and results in the history are spelled
// the same way (the template renders them as plain text). The parser and grammar are built with common's PEG builder
// (standard_json_tools: the arguments follow each function's JSON schema), so generation and parsing are llama.cpp's.
// With tool_choice "required" the grammar starts at the call (not lazy): a model that was never trained on tools
// cannot wander into prose first. With "auto" it is lazy, triggered by "<tool_call>", so the model may answer in text.
const char * const GENERIC_CALL_START = "<tool_call>";
const char * const GENERIC_CALL_END   = "</tool_call>";

std::string generic_tools_text(const common_json & tools) {
    std::string s = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const auto & t : tools) {
        s += "\n" + t.dump();
    }
    s += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
         "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";
    return s;
}

std::string generic_call_text(const common_chat_tool_call & c) {
    common_json args;
    try {
        args = common_json::parse(c.arguments);
    } catch (const std::exception &) {
        args = c.arguments;  // not JSON: kept as the string it is
    }
    return std::string(GENERIC_CALL_START) + "\n" + common_json({ { "name", c.name }, { "arguments", args } }).dump() + "\n" + GENERIC_CALL_END;
}

// The messages as a template without tool support can render them: the tools described in the system message,
// assistant calls as text, tool results as a user turn of <tool_response> blocks (consecutive results in one turn).
std::vector<common_chat_msg> generic_messages(const std::vector<common_chat_msg> & in, const common_json & tools, bool describe) {
    std::vector<common_chat_msg> out;
    bool after_tool = false;
    for (const auto & m : in) {
        const bool tool = m.role == "tool";
        if (m.role == "assistant" && !m.tool_calls.empty()) {
            common_chat_msg a = m;
            std::string text = m.render_content();
            for (const auto & c : m.tool_calls) {
                text += (text.empty() ? "" : "\n") + generic_call_text(c);
            }
            a.content = text;
            a.content_parts.clear();
            a.tool_calls.clear();
            out.push_back(a);
        } else if (m.role == "tool") {
            std::string block = "<tool_response>\n" + m.render_content() + "\n</tool_response>";
            if (after_tool) {
                out.back().content += "\n" + block;
            } else {
                common_chat_msg u;
                u.role = "user";
                u.content = block;
                out.push_back(u);
            }
        } else {
            out.push_back(m);
        }
        after_tool = tool;
    }
    if (describe) {
        const std::string text = generic_tools_text(tools);
        if (!out.empty() && out.front().role == "system" && out.front().content_parts.empty()) {
            out.front().content += (out.front().content.empty() ? "" : "\n\n") + text;
        } else {
            common_chat_msg sys;
            sys.role = "system";
            sys.content = text;
            out.insert(out.begin(), sys);
        }
    }
    return out;
}

common_chat_params apply_generic_tools(const common_chat_templates * tmpls, const common_chat_templates_inputs & in) {
    const common_json tools = common_chat_tools_to_json_oaicompat(in.tools);
    const bool calls = in.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE;
    common_chat_templates_inputs plain = in;
    plain.messages = generic_messages(in.messages, tools, calls);
    plain.tools.clear();
    plain.tool_choice = COMMON_CHAT_TOOL_CHOICE_AUTO;
    common_chat_params out = common_chat_templates_apply(tmpls, plain);
    if (!calls) {
        return out;
    }
    const bool required = in.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    const std::string gen_prompt = out.generation_prompt;
    common_peg_arena parser = build_chat_peg_parser([&](common_chat_peg_builder & p) {
        // One call per <tool_call> block, as Hermes/Qwen write them; several blocks when parallel calls are allowed.
        // Nothing may follow the last block: the grammar then allows only the end of generation, so a model that
        // would pad with whitespace (or start another call when one was asked for) stops.
        auto call = p.standard_json_tools(GENERIC_CALL_START, GENERIC_CALL_END, tools, false, true);
        // Several calls: a rule of their own that is a trigger too, as llama.cpp's generators do, since a lazy
        // grammar's root is made of the trigger rules alone (the single call's rule would allow one call only).
        auto all = in.parallel_tool_calls ? p.trigger_rule("tool-calls", call + p.zero_or_more(p.space() + call)) : call;
        if (required) {
            return p.prefix(gen_prompt) << (all + p.end());
        }
        return p.prefix(gen_prompt) << (p.optional(p.content(p.until(GENERIC_CALL_START))) + p.optional(all) + p.end());
    });
    out.format = COMMON_CHAT_FORMAT_PEG_NATIVE;
    out.parser = parser.save();
    out.grammar_lazy = !required;
    out.grammar = build_grammar([&](const common_grammar_builder & builder) { parser.build_grammar(builder, out.grammar_lazy); });
    out.grammar_triggers.clear();
    if (out.grammar_lazy) {
        out.grammar_triggers.push_back({ COMMON_GRAMMAR_TRIGGER_TYPE_WORD, GENERIC_CALL_START });
    }
    return out;
}

}  // namespace

extern "C" {

// A template set for the model; `override` (may be null) replaces the template stored in the GGUF.
JNIEXPORT jlong JNICALL Java_dev_steer_llama_ChatTemplates_nativeInit(JNIEnv * env, jclass, jlong model_h, jbyteArray override_bytes) {
    return guarded(env, (jlong) 0, [&] {
        const llama_model * model = model_of(model_h);
        const std::string tmpl = override_bytes ? to_string(env, override_bytes) : std::string();
        if (!tmpl.empty()) {
            // common_chat_templates_init logs the parse error through its own logger and rethrows a bare
            // std::exception; parsing once here gives the caller the actual reason.
            try {
                common_chat_template probe(tmpl, "", "");
            } catch (const std::exception & e) {
                throw bad_argument(std::string("invalid chat template: ") + e.what());
            }
        }
        common_chat_templates_ptr t = common_chat_templates_init(model, tmpl);
        if (!t) {
            throw llama_failure("failed to initialise the chat template");
        }
        return to_handle(t.release());
    });
}

JNIEXPORT void JNICALL Java_dev_steer_llama_ChatTemplates_nativeFree(JNIEnv * env, jclass, jlong h) {
    guarded_void(env, [&] { common_chat_templates_free(from_handle<common_chat_templates>(h, "chat templates")); });
}

// Renders a request. In (JSON): {"messages": [OpenAI messages], "add_generation_prompt": bool,
// "continue_final_message": bool, "json_schema": object?, "grammar": string?, "chat_template_kwargs": object?}.
// Out (JSON): {"prompt", "grammar", "grammar_lazy", "grammar_triggers": [{"type","value","token"}],
// "additional_stops": [..], "preserved_tokens": [..], "generation_prompt"}.
JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_ChatTemplates_nativeApply(JNIEnv * env, jclass, jlong h, jbyteArray request_bytes) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        const auto * tmpls = from_handle<common_chat_templates>(h, "chat templates");
        common_json req;
        try {
            req = common_json::parse(to_string(env, request_bytes));
        } catch (const std::exception & e) {
            throw bad_argument(std::string("chat request is not valid JSON: ") + e.what());
        }
        common_chat_templates_inputs in;
        if (req.contains("tools") && !req.at("tools").is_null()) {
            // Each function's parameters become a grammar: a schema llama.cpp cannot convert is the client's error,
            // named here (and not found later inside the template, where it would read as a bad message).
            try {
                in.tools = common_chat_tools_parse_oaicompat(req.at("tools"));
            } catch (const std::exception & e) {
                throw bad_argument(std::string("invalid tools: ") + e.what());
            }
            for (const auto & t : in.tools) {
                try {
                    json_schema_to_grammar(common_chat_tool_parameters(common_json::object({ { "parameters", common_json::parse(t.parameters) } })));
                } catch (const std::exception & e) {
                    throw bad_argument("invalid tools: the parameters of '" + t.name + "': " + e.what());
                }
            }
            in.tool_choice = common_chat_tool_choice_parse_oaicompat(req.value("tool_choice", std::string("auto")));
            in.parallel_tool_calls = req.value("parallel_tool_calls", false);
        }
        try {
            in.messages              = common_chat_msgs_parse_oaicompat(req.at("messages"));
            in.add_generation_prompt = req.value("add_generation_prompt", true);
            in.continue_final_message = req.value("continue_final_message", false) ? COMMON_CHAT_CONTINUATION_AUTO
                                                                                    : COMMON_CHAT_CONTINUATION_NONE;
            if (req.contains("json_schema") && !req.at("json_schema").is_null()) {
                in.json_schema = req.at("json_schema").dump();
            }
            in.grammar = req.value("grammar", std::string());
            if (req.contains("chat_template_kwargs")) {
                for (const auto & item : req.at("chat_template_kwargs").items()) {
                    in.chat_template_kwargs[item.key()] = item.value().dump();
                }
            }
        } catch (const std::exception & e) {
            throw bad_argument(std::string("invalid messages: ") + e.what());
        }
        if (in.messages.empty()) {
            throw bad_argument("messages must not be empty");
        }
        if (in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE && in.add_generation_prompt) {
            throw bad_argument("cannot both add a generation prompt and continue the final message");
        }
        common_chat_params out;
        // A template that cannot render tool calls gets the generic format (above); one that can, its own (llama.cpp).
        const bool generic = !in.tools.empty() && !common_chat_templates_get_caps(tmpls).at("supports_tool_calls");
        try {
            out = generic ? apply_generic_tools(tmpls, in) : common_chat_templates_apply(tmpls, in);
        } catch (const std::exception & e) {
            throw bad_argument(std::string("chat template failed: ") + e.what());
        }
        // The grammar's triggers as lazy-grammar patterns and tokens, converted as common/sampling.cpp does for llama-server.
        common_json trigger_patterns = common_json::array(), trigger_tokens = common_json::array();
        for (const auto & t : out.grammar_triggers) {
            switch (t.type) {
                case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: trigger_patterns.push_back(regex_escape(t.value)); break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: trigger_patterns.push_back(t.value); break;
                case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
                    std::string anchored = "^$";
                    if (!t.value.empty()) {
                        anchored = (t.value.front() != '^' ? "^" : "") + t.value + (t.value.back() != '$' ? "$" : "");
                    }
                    trigger_patterns.push_back(anchored);
                    break;
                }
                case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: trigger_tokens.push_back(t.token); break;
            }
        }
        common_json res = common_json::object({
            { "prompt",            out.prompt },
            { "grammar",           out.grammar },
            { "grammar_lazy",      out.grammar_lazy },
            { "trigger_patterns",  trigger_patterns },
            { "trigger_tokens",    trigger_tokens },
            { "format",            (int) out.format },
            { "parser",            out.parser },
            { "additional_stops",  out.additional_stops },
            { "preserved_tokens",  out.preserved_tokens },
            { "generation_prompt", out.generation_prompt },
        });
        return to_bytes(env, res.dump());
    });
}

// Parses a finished answer the way the template's format writes tool calls (llama.cpp's common_chat_parse, as
// llama-server does). In (JSON): {"format": int, "parser": string, "generation_prompt": string, "text": string}.
// Out (JSON): the assistant message in OpenAI's shape ({"role", "content", "tool_calls"?}). An answer that does not
// parse (cut off by max_tokens inside a call) is returned as plain content. With "partial": true the text is an answer
// still being written (streaming): what has been read so far, a call's arguments possibly incomplete.
JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_ChatTemplates_nativeParse(JNIEnv * env, jclass, jbyteArray request_bytes) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        common_json req = common_json::parse(to_string(env, request_bytes));
        const std::string text = req.at("text").get<std::string>();
        common_chat_parser_params params;
        params.format = (common_chat_format) req.at("format").get<int>();
        params.generation_prompt = req.value("generation_prompt", std::string());
        const std::string parser = req.value("parser", std::string());
        if (!parser.empty()) {
            params.parser.load(parser);
        }
        const bool partial = req.value("partial", false);
        common_chat_msg msg;
        try {
            msg = common_chat_parse(text, partial, params);
        } catch (const std::exception &) {
            msg = common_chat_msg();
            msg.role = "assistant";
            msg.content = partial ? std::string() : text;  // a partial answer that does not read yet: nothing so far
        }
        msg.role = "assistant";
        return to_bytes(env, msg.to_json_oaicompat().dump());
    });
}

}  // extern "C"
