package dev.steer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import dev.steer.testing.TinyModels;
import org.junit.jupiter.api.Test;

/**
 * The token a stop read as the end teaches ({@link JobRunner#endOfTurn}): a chat model's end of turn, not the end of
 * the text. The tiny model is ChatML like SmolLM2: its end of turn is {@code <|im_end|>} (llama.cpp finds it by its
 * text), its end of text {@code </s>}.
 */
class EndOfTurnTest {
    @Test
    void aChatModelEndsATurnWithItsEndOfTurnTokenNotItsEos() {
        LlamaModel model = TestModels.tinyLlama();
        assertEquals(TinyModels.tokenId("</s>"), model.info().eos());
        assertNotEquals(model.info().eos(), model.info().eot(), "the tiny model has its own end of turn");
        assertEquals(TinyModels.tokenId("<|im_end|>"), JobRunner.endOfTurn(model));
    }
}
