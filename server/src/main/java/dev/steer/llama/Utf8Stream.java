package dev.steer.llama;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns the bytes of successive tokens into text, holding back a UTF-8 character until all its bytes have arrived
 * (byte-fallback tokenizers split one character over several tokens). Invalid bytes become U+FFFD.
 */
public final class Utf8Stream {
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private ByteBuffer pending = ByteBuffer.allocate(0);

    /** The text completed by these bytes; possibly empty while a character is still incomplete. */
    public String append(byte[] bytes) {
        ByteBuffer in = ByteBuffer.allocate(pending.remaining() + bytes.length);
        in.put(pending).put(bytes).flip();
        CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
        decoder.decode(in, out, false);
        pending = in.slice();  // an incomplete character stays behind
        return out.flip().toString();
    }

    /** Ends the stream: incomplete trailing bytes become U+FFFD. */
    public String finish() {
        CharBuffer out = CharBuffer.allocate(pending.remaining() + 2);
        decoder.decode(pending, out, true);
        decoder.flush(out);
        pending = ByteBuffer.allocate(0);
        decoder.reset();
        return out.flip().toString();
    }

    /** Bytes held back, waiting for the rest of their character. */
    public int pendingBytes() {
        return pending.remaining();
    }
}
