package dev.steer.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code STEER_LLAMA_LOG} (README) is read while the library loads, once per process: each case runs in a JVM of
 * its own. Until 2026-12-06 any value sent {@code load} into itself without end (a StackOverflowError at start-up).
 */
class NativeLogLevelTest {

    @Test
    void aLevelFromTheEnvironmentLoadsTheLibrary() throws Exception {
        for (String level : List.of("info", "NONE", "debug")) {
            Child c = run(level);
            assertEquals(0, c.exit, level + ": " + c.out);
            assertTrue(c.out.contains("loaded: llama.cpp "), level + ": " + c.out);
        }
    }

    @Test
    void anUnknownLevelSaysWhichOnesThereAre() throws Exception {
        Child c = run("loud");
        assertNotEquals(0, c.exit, c.out);
        assertTrue(c.out.contains("unknown llama.cpp log level 'loud': use one of debug, info, warn, error, none"), c.out);
        assertFalse(c.out.contains("StackOverflowError"), c.out);
    }

    private record Child(int exit, String out) {}

    private static Child run(String level) throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Path log = Files.createTempFile("steer-log-level", ".txt");
        try {
            ProcessBuilder pb = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), LoadAndSay.class.getName())
                    .redirectErrorStream(true).redirectOutput(log.toFile());  // a file: a full pipe cannot stall the child
            pb.environment().put("STEER_LLAMA_LOG", level);
            Process p = pb.start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("the child JVM did not end within 60 s: " + Files.readString(log));
            }
            return new Child(p.exitValue(), Files.readString(log));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** Runs in the child JVM. */
    static final class LoadAndSay {
        public static void main(String[] args) {
            System.out.println("loaded: " + NativeLibrary.systemInfo());
        }
    }
}
