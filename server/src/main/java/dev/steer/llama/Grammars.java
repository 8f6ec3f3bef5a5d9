package dev.steer.llama;

import java.nio.charset.StandardCharsets;

/** Grammar helpers from llama.cpp's {@code common}. */
public final class Grammars {
    private Grammars() {}

    /** GBNF that accepts exactly the JSON documents valid under this JSON schema (as llama-server builds it). */
    public static String fromJsonSchema(String schemaJson) {
        NativeLibrary.load();
        return new String(nativeJsonSchemaToGbnf(schemaJson.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8);
    }

    private static native byte[] nativeJsonSchemaToGbnf(byte[] schema);
}
