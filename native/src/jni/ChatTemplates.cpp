// dev.steer.llama.ChatTemplates: the model's Jinja chat template, rendered by llama.cpp's `common` (the same code
// llama-server uses), so that prompts match what the model was trained on.
#include "model.h"

#include "chat.h"
#include "common.h"
#include "peg-parser.h"
#include "json.h"

using namespace steer;

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
        try {
            in.messages              = common_chat_msgs_parse_oaicompat(req.at("messages"));
            in.add_generation_prompt = req.value("add_generation_prompt", true);
            in.continue_final_message = req.value("continue_final_message", false) ? COMMON_CHAT_CONTINUATION_AUTO
                                                                                    : COMMON_CHAT_CONTINUATION_NONE;
            if (req.contains("json_schema") && !req.at("json_schema").is_null()) {
                in.json_schema = req.at("json_schema").dump();
            }
            in.grammar = req.value("grammar", std::string());
            if (req.contains("tools") && !req.at("tools").is_null()) {
                in.tools = common_chat_tools_parse_oaicompat(req.at("tools"));
                in.tool_choice = common_chat_tool_choice_parse_oaicompat(req.value("tool_choice", std::string("auto")));
                in.parallel_tool_calls = req.value("parallel_tool_calls", false);
            }
            if (req.contains("chat_template_kwargs")) {
                for (const auto & item : req.at("chat_template_kwargs").items()) {
                    in.chat_template_kwargs[item.key()] = item.value().dump();
                }
            }
        } catch (const std::exception & e) {
            throw bad_argument(std::string("invalid chat request: ") + e.what());
        }
        if (in.messages.empty()) {
            throw bad_argument("messages must not be empty");
        }
        if (in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE && in.add_generation_prompt) {
            throw bad_argument("cannot both add a generation prompt and continue the final message");
        }
        common_chat_params out;
        try {
            out = common_chat_templates_apply(tmpls, in);
        } catch (const std::exception & e) {
            throw bad_argument(std::string("chat template failed: ") + e.what());
        }
        common_json triggers = common_json::array();
        // The same triggers as lazy-grammar patterns and tokens, converted as common/sampling.cpp does for llama-server.
        common_json trigger_patterns = common_json::array(), trigger_tokens = common_json::array();
        for (const auto & t : out.grammar_triggers) {
            triggers.push_back(common_json::object({ { "type", (int) t.type }, { "value", t.value }, { "token", t.token } }));
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
            { "grammar_triggers",  triggers },
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
// parse (cut off by max_tokens inside a call) is returned as plain content.
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
        common_chat_msg msg;
        try {
            msg = common_chat_parse(text, false, params);
        } catch (const std::exception &) {
            msg = common_chat_msg();
            msg.role = "assistant";
            msg.content = text;
        }
        msg.role = "assistant";
        return to_bytes(env, msg.to_json_oaicompat().dump());
    });
}

}  // extern "C"
