package dev.steer.engine;

/** Why a generation ended, named as OpenAI's finish_reason where one exists. */
public enum FinishReason {
    /** an end-of-generation token or a stop string */
    STOP("stop"),
    /** max_tokens, or the sequence's context is full */
    LENGTH("length"),
    /** the client went away or asked to stop */
    CANCELLED("cancelled");

    public final String openAi;

    FinishReason(String openAi) {
        this.openAi = openAi;
    }
}
