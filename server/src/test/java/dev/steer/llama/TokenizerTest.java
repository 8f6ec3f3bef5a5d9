package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.steer.testing.TestModels;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class TokenizerTest {
    private final LlamaModel model = TestModels.tinyLlama();

    @Test
    void asciiRoundTrip() {
        String text = "hello world, the model is in the steer!";
        int[] tokens = model.tokenize(text, false, false);
        assertTrue(tokens.length < text.length(), "merges should make fewer tokens than characters");
        assertEquals(text, model.detokenize(tokens, false, false).stripLeading());
    }

    @Test
    void multiByteUtf8SplitAcrossTokensRoundTrips() {
        String text = "héllo wörld: 5€ 😀 日本";
        int[] tokens = model.tokenize(text, false, false);
        assertEquals(text, model.detokenize(tokens, false, false).stripLeading());

        // Byte-fallback tokens carry single bytes of multi-byte characters: decoding token by token must hold
        // them back until the character is whole, and never emit a broken character.
        Utf8Stream stream = new Utf8Stream();
        StringBuilder streamed = new StringBuilder();
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        int splitTokens = 0;
        for (int t : tokens) {
            byte[] piece = model.tokenBytes(t, false);
            all.writeBytes(piece);
            String chunk = stream.append(piece);
            if (stream.pendingBytes() > 0) {
                splitTokens++;
            }
            assertTrue(chunk.indexOf('\uFFFD') < 0, "no replacement characters mid-stream");
            streamed.append(chunk);
        }
        streamed.append(stream.finish());
        assertTrue(splitTokens >= 4, "é, ö, €, 😀, 日, 本 are each split over byte tokens, saw " + splitTokens);
        assertEquals(new String(all.toByteArray(), StandardCharsets.UTF_8), streamed.toString());
        assertEquals(text, streamed.toString().stripLeading());
    }

    @Test
    void specialTokensParseOnlyWhenAsked() {
        int[] parsed = model.tokenize("<|im_start|>user", false, true);
        assertEquals(3, parsed[0], "<|im_start|> is token 3 of the tiny vocabulary");
        int[] plain = model.tokenize("<|im_start|>user", false, false);
        assertTrue(plain.length > parsed.length, "as plain text it is spelled out");
        assertTrue(model.isEndOfGeneration(4), "<|im_end|> ends generation");
        assertTrue(model.isEndOfGeneration(model.info().eos()));
    }

    @Test
    void bosIsAddedWhenTheModelSaysSo() {
        int[] withBos = model.tokenize("hello", true, false);
        int[] without = model.tokenize("hello", false, false);
        assertEquals(model.info().bos(), withBos[0]);
        assertArrayEquals(without, java.util.Arrays.copyOfRange(withBos, 1, withBos.length));
    }

    @Test
    void truncatedCharacterAtTheEndBecomesReplacement() {
        Utf8Stream s = new Utf8Stream();
        assertEquals("a", s.append(new byte[] {'a', (byte) 0xE2, (byte) 0x82}));
        assertEquals(2, s.pendingBytes());
        assertEquals("\uFFFD", s.finish());
    }
}
