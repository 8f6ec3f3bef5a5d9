package dev.steer.adapters;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The names of an adapter version, in one place: its id {@code v3} (what the API and steer records call it), the
 * model name {@code tiny@v3} that pins it, its file {@code v3.gguf}; and {@code tiny@base}, the model name that pins
 * the base model with no adapter. A plain {@code tiny} follows whichever version is active ({@link ServedAdapters}).
 */
public record AdapterVersion(int number) {
    /** The suffix that pins the base model alone: {@code tiny@base}. */
    public static final String BASE = "base";
    /** Version ids as clients write them: "v" and up to nine digits (so the number fits an int). */
    private static final Pattern ID = Pattern.compile("v([0-9]{1,9})");

    public AdapterVersion {
        if (number < 1) {
            throw new IllegalArgumentException("adapter versions are numbered from 1, not " + number);
        }
    }

    public static AdapterVersion of(int number) {
        return new AdapterVersion(number);
    }

    /** {@code "v3"} to version 3; empty for anything else ({@code "3"}, {@code "v"}, {@code "v0"}, {@code "base"}). */
    public static Optional<AdapterVersion> parse(String id) {
        Matcher m = id == null ? null : ID.matcher(id);
        if (m == null || !m.matches()) {
            return Optional.empty();
        }
        int n = Integer.parseInt(m.group(1));
        return n < 1 ? Optional.empty() : Optional.of(new AdapterVersion(n));
    }

    /**
     * What a model name asks of the model served as {@code baseModel}: the one place model names are read. Which
     * versions exist is the registry's matter ({@link ServedAdapters}); this is only the name.
     */
    public sealed interface ModelName {
        /** {@code tiny} (or no name): whichever version is active */
        record Active() implements ModelName {}

        /** {@code tiny@base}: the base model alone */
        record Base() implements ModelName {}

        /** {@code tiny@v3}: that version */
        record Pinned(AdapterVersion version) implements ModelName {}

        /** {@code tiny@something}: the served model with a suffix that is no version id ({@code tiny@3}, {@code tiny@}) */
        record BadSuffix(String suffix) implements ModelName {}

        /** not the served model's name at all */
        record OtherModel() implements ModelName {}
    }

    /** Reads {@code name} (null: none given) as a name of {@code baseModel} or one of its versions. */
    public static ModelName parseModelName(String baseModel, String name) {
        if (name == null || name.equals(baseModel)) {
            return new ModelName.Active();
        }
        if (!name.startsWith(baseModel + "@")) {
            return new ModelName.OtherModel();
        }
        String suffix = name.substring(baseModel.length() + 1);
        if (suffix.equals(BASE)) {
            return new ModelName.Base();
        }
        return parse(suffix).<ModelName>map(ModelName.Pinned::new).orElseGet(() -> new ModelName.BadSuffix(suffix));
    }

    /** The id of {@code number}, or null for null (the base model): how records and responses spell "no adapter". */
    public static String idOrNull(Integer number) {
        return number == null ? null : of(number).id();
    }

    /** The model name that pins {@code number} ({@code tiny@v3}), or the base model alone ({@code tiny@base}) for null. */
    public static String pinnedName(String baseModel, Integer number) {
        return number == null ? baseModel + "@" + BASE : of(number).modelName(baseModel);
    }

    /** {@code "v3"}. */
    public String id() {
        return "v" + number;
    }

    /** {@code "tiny@v3"}: the model name that pins this version. */
    public String modelName(String baseModel) {
        return baseModel + "@" + id();
    }

    /** {@code "v3.gguf"}: its file in the adapter directory. */
    public String fileName() {
        return id() + ".gguf";
    }

    @Override
    public String toString() {
        return id();
    }
}
