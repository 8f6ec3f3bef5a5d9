package dev.steer.llama;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads libsteer (our JNI library with llama.cpp inside) once per process.
 *
 * <p>The library ships in the jar as {@code dev/steer/native/<os>-<arch>/libsteer.so}. A custom build (say, CUDA
 * for a specific GPU) is used instead when {@code -Dsteer.native.lib=PATH} or {@code STEER_NATIVE_LIB=PATH} is set.
 */
public final class NativeLibrary {
    private static boolean loaded;

    private NativeLibrary() {}

    public static synchronized void load() {
        if (loaded) {
            return;
        }
        // Read first: a bad level fails every load, not only the first one.
        String level = System.getProperty("steer.llama.log", System.getenv("STEER_LLAMA_LOG"));
        LogLevel printLevel = level == null || level.isBlank() ? null : LogLevel.parse(level);
        String override = System.getProperty("steer.native.lib", System.getenv("STEER_NATIVE_LIB"));
        if (override != null && !override.isBlank()) {
            System.load(Path.of(override).toAbsolutePath().toString());
        } else {
            System.load(extractBundled().toString());
        }
        nativeInit();
        loaded = true;
        if (printLevel != null) {
            // The native call, not setLogLevel: that one loads first, and from here that was a recursion without end.
            nativeSetLogLevel(printLevel.ggmlLevel);
        }
    }

    /** Which llama.cpp messages reach stderr. Errors also end up in exception messages regardless. */
    public enum LogLevel {
        DEBUG(1), INFO(2), WARN(3), ERROR(4), NONE(6);

        final int ggmlLevel;

        LogLevel(int ggmlLevel) {
            this.ggmlLevel = ggmlLevel;
        }

        /** A level by name, any case ({@code STEER_LLAMA_LOG=info}); an unknown name says which ones there are. */
        public static LogLevel parse(String name) {
            try {
                return valueOf(name.strip().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown llama.cpp log level '" + name + "': use one of debug, info, warn, error, none");
            }
        }
    }

    public static void setLogLevel(LogLevel level) {
        load();
        nativeSetLogLevel(level.ggmlLevel);
    }

    /** llama.cpp version and the CPU/GPU features it was built with. */
    public static String systemInfo() {
        load();
        return new String(nativeSystemInfo(), StandardCharsets.UTF_8);
    }

    public static boolean supportsGpuOffload() {
        load();
        return nativeSupportsGpuOffload();
    }

    static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        os = os.startsWith("mac") ? "darwin" : os.startsWith("windows") ? "windows" : os;
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        arch = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "arm64", "aarch64" -> "aarch64";
            default -> arch;
        };
        return os + "-" + arch;
    }

    private static Path extractBundled() {
        String name = System.mapLibraryName("steer");
        String resource = "/dev/steer/native/" + platform() + "/" + name;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("no native library for " + platform() + " in this build (" + resource
                        + "); build it with `mvn -pl native package` or point -Dsteer.native.lib at one");
            }
            Path dir = Files.createTempDirectory("steer-native");
            Path file = dir.resolve(name);
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            file.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + resource, e);
        }
    }

    private static native void nativeInit();

    private static native void nativeSetLogLevel(int level);

    private static native byte[] nativeSystemInfo();

    private static native boolean nativeSupportsGpuOffload();
}
