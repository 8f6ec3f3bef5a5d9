package dev.steer.llama;

/** The most likely next tokens at one position, most likely first, with their log-probabilities. */
public record TopLogprobs(int[] tokens, float[] logprobs) {
    public int size() {
        return tokens.length;
    }
}
