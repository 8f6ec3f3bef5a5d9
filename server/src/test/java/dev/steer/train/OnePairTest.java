package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.steer.Exports;
import dev.steer.steer.SteerRecord;
import dev.steer.testing.TestModels;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A steer's exports and Steer's own training define the pair the same way: what a TRL run on the DPO export
 * compares is what a Steer job compares (the correction after the tokens it shares with the model's output,
 * against the model's output there cut to the same length).
 */
class OnePairTest {
    @Test
    void theDpoExportIsTheTrainingSetsPair() {
        LlamaModel model = TestModels.tinyLlama();
        int[] prompt = model.tokenize("hello world,", true, false);
        int[] accepted = model.tokenize(" the model", false, false);
        int[] shared = model.tokenize(" is", false, false);
        int[] rejected = concat(shared, model.tokenize(" a token in a long reply", false, false));
        int[] correction = concat(shared, model.tokenize(" the steer", false, false));
        int[] continuation = model.tokenize(" and more", false, false);
        SteerRecord r = new SteerRecord("s1", "a", "steer", "m", null, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", prompt,
                accepted.length, accepted, rejected, correction, "", "", "", List.of(), continuation, "", false, Set.of(), 1, 1);

        LoraTrainer.Example e = TrainingSet.item(List.of(r), TrainingSet.StopReading.IGNORE).example();
        int[] learned = e.tokensOf(LoraTrainer.LEARN);
        assertArrayEquals(Arrays.copyOfRange(correction, shared.length, correction.length), learned);
        assertEquals(learned.length, e.rejected().length, "rejected cut to the correction's length");

        JsonObject dpo = JsonParser.parseString(Exports.jsonl(List.of(r), Exports.Format.TRL_DPO, model).strip()).getAsJsonObject();
        int[] kept = concat(accepted, shared);
        assertEquals(Exports.span(model, kept, learned), dpo.get("chosen").getAsString());
        assertEquals(Exports.span(model, kept, e.rejected()), dpo.get("rejected").getAsString());
        assertEquals(model.detokenize(concat(kept, learned), false, false),
                model.detokenize(kept, false, false) + dpo.get("chosen").getAsString(), "the spans read on from the kept text");
        assertEquals(model.detokenize(prompt, false, true) + model.detokenize(concat(accepted, shared), false, false), dpo.get("prompt").getAsString());
        assertEquals(model.detokenize(Arrays.copyOf(e.tokens(), e.fork()), false, true), dpo.get("prompt").getAsString(),
                "the prompt is the training example's context up to the fork");

        JsonObject sft = JsonParser.parseString(Exports.jsonl(List.of(r), Exports.Format.TRL_SFT, model).strip()).getAsJsonObject();
        assertEquals(dpo.get("chosen").getAsString() + Exports.span(model, concat(kept, learned), continuation), sft.get("completion").getAsString());
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
