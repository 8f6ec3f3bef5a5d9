package dev.steer.engine;

/**
 * What the decode thread does to a generation's output, for tests outside this package that stand in for the engine
 * (a launcher that plays a whole continuation). Production code writes an output only through {@link Slot}.
 */
public final class OutputWriter {
    private OutputWriter() {}

    /** The output the engine would give {@code r} at submit. */
    public static GenerationOutput startOf(GenerationRequest r) {
        return GenerationOutput.startOf(r);
    }

    public static void append(GenerationOutput out, int token) {
        out.append(token);
    }

    /** The steer a continuation starts with is reported: readers see it. */
    public static void showSteer(GenerationOutput out) {
        out.showSteer();
    }
}
