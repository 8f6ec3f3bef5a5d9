package dev.steer.llama;

/** llama.cpp refused or failed an operation (bad model file, decode failure, ...). The process is unharmed. */
public class LlamaException extends RuntimeException {
    public LlamaException(String message) {
        super(message);
    }
}
