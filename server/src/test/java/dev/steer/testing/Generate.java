package dev.steer.testing;

import dev.steer.llama.Batch;
import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import java.util.ArrayList;
import java.util.List;

/** The plainest decode loop, for tests: prefill a prompt in one sequence, then sample token by token. */
public final class Generate {
    private Generate() {}

    /** Generates up to {@code maxTokens} tokens after {@code prompt} in sequence {@code seq}, stopping at EOG. */
    public static List<Integer> run(LlamaContext ctx, LlamaSampler sampler, int[] prompt, int seq, int maxTokens) {
        LlamaModel model = ctx.model();
        Batch batch = ctx.newBatch();
        int pos = 0;
        int last = -1;
        for (int i = 0; i < prompt.length; i++) {
            last = batch.add(prompt[i], pos++, seq, i == prompt.length - 1);
            if (batch.size() == batch.capacity() || i == prompt.length - 1) {
                ctx.decode(batch);
                if (i < prompt.length - 1) {
                    batch.clear();
                }
            }
        }
        List<Integer> out = new ArrayList<>();
        while (out.size() < maxTokens) {
            int token = sampler.sample(ctx, last);
            out.add(token);
            if (model.isEndOfGeneration(token)) {
                break;
            }
            batch.clear();
            last = batch.add(token, pos++, seq, true);
            ctx.decode(batch);
        }
        return out;
    }

    public static int[] toArray(List<Integer> tokens) {
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }
}
