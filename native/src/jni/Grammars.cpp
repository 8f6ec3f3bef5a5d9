// dev.steer.llama.Grammars: JSON schema -> GBNF, by llama.cpp's `common` (the converter llama-server uses).
#include "jni_support.h"

#include "json-schema-to-grammar.h"
#include "json.h"

using namespace steer;

extern "C" {

JNIEXPORT jbyteArray JNICALL Java_dev_steer_llama_Grammars_nativeJsonSchemaToGbnf(JNIEnv * env, jclass, jbyteArray schema_bytes) {
    return guarded(env, (jbyteArray) nullptr, [&] {
        common_json schema;
        try {
            schema = common_json::parse(to_string(env, schema_bytes));
        } catch (const std::exception & e) {
            throw bad_argument(std::string("schema is not valid JSON: ") + e.what());
        }
        try {
            return to_bytes(env, json_schema_to_grammar(schema));
        } catch (const std::exception & e) {
            throw bad_argument(std::string("unsupported JSON schema: ") + e.what());
        }
    });
}

}  // extern "C"
