package dev.steer.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.javalin.Javalin;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Downloads through Hugging Face's URL scheme, served here by a local stand-in (HF_ENDPOINT in real use). */
class HuggingFaceTest {
    @Test
    void downloadsOnceIntoTheCacheThenReusesIt(@TempDir Path cache) throws Exception {
        byte[] payload = new byte[3_000_000];
        new Random(5).nextBytes(payload);
        AtomicInteger hits = new AtomicInteger();
        Javalin hub = Javalin.create(c -> {
            c.startup.showJavalinBanner = false;
            c.routes.get("/owner/repo/resolve/main/model.gguf", ctx -> {
                hits.incrementAndGet();
                ctx.header("Content-Length", String.valueOf(payload.length)).result(payload);
            });
        }).start("127.0.0.1", 0);
        try {
            String endpoint = "http://127.0.0.1:" + hub.port();
            Path p = HuggingFace.download(endpoint, "owner/repo", "model.gguf", cache);
            assertEquals(cache.resolve("owner/repo/model.gguf"), p);
            assertArrayEquals(payload, Files.readAllBytes(p));
            assertEquals(p, HuggingFace.download(endpoint, "owner/repo", "model.gguf", cache));
            assertEquals(1, hits.get(), "the second call used the cache");
            var e = assertThrows(IOException.class, () -> HuggingFace.download(endpoint, "owner/repo", "missing.gguf", cache));
            assertTrue(e.getMessage().contains("HTTP 404"), e.getMessage());
            assertTrue(Files.notExists(cache.resolve("owner/repo/missing.gguf")));
            assertThrows(IllegalArgumentException.class, () -> HuggingFace.download(endpoint, "../etc", "passwd", cache));
        } finally {
            hub.stop();
        }
        assertTrue(HuggingFace.progressBar("m.gguf", 50, 100).contains("50%"));
    }
}
