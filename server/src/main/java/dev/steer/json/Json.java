package dev.steer.json;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.TypeAdapter;
import com.google.gson.TypeAdapterFactory;
import com.google.gson.reflect.TypeToken;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.util.Locale;

/**
 * The one Gson configuration for JSON the server writes: API responses, SSE chunks, job reports. Responses are
 * records, written by these rules:
 * <ul>
 *   <li>names: a component's name in snake_case ({@code promptTokens} is {@code prompt_tokens}), in declaration order;</li>
 *   <li>nulls: written as {@code null}, because OpenAI's shapes carry explicit nulls ({@code finish_reason},
 *       {@code logprobs}, {@code refusal}, {@code finished_at}, {@code error}) and clients test for them; a component
 *       marked {@link OmitWhenNull} is left out instead;</li>
 *   <li>a NaN or infinite number (a metric that does not apply) is written as {@code null}: JSON has no NaN;</li>
 *   <li>no HTML escaping ({@code <} stays {@code <}: model text is not HTML).</li>
 * </ul>
 * Stored JSON (job specs, adapter lineage in SQLite) has its own plain Gson and is not affected.
 */
public final class Json {
    public static final Gson GSON = new GsonBuilder()
            .serializeNulls()
            .disableHtmlEscaping()
            // Non-finite numbers are written as null here, so Gson's own check (which would throw) never sees them.
            .registerTypeAdapter(double.class, finiteOrNullDouble())
            .registerTypeAdapter(Double.class, finiteOrNullDouble())
            .registerTypeAdapter(float.class, finiteOrNullFloat())
            .registerTypeAdapter(Float.class, finiteOrNullFloat())
            .registerTypeAdapterFactory(new Records())
            .create();

    private Json() {}

    /** {@code value} as JSON text. */
    public static String write(Object value) {
        return GSON.toJson(value);
    }

    /** {@code value} as a JSON tree, by the same rules (for a response that embeds it). */
    public static JsonElement tree(Object value) {
        return GSON.toJsonTree(value);
    }

    /** snake_case of a Java name: an underscore before each capital, then lower case (Gson's LOWER_CASE_WITH_UNDERSCORES). */
    static String snakeCase(String name) {
        StringBuilder out = new StringBuilder(name.length() + 4);
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (Character.isUpperCase(c) && out.length() > 0) {
                out.append('_');
            }
            out.append(c);
        }
        return out.toString().toLowerCase(Locale.ENGLISH);
    }

    private static TypeAdapter<Double> finiteOrNullDouble() {
        return new TypeAdapter<>() {
            @Override
            public void write(JsonWriter out, Double v) throws IOException {
                if (v == null || !Double.isFinite(v)) {
                    out.nullValue();
                } else {
                    out.value(v.doubleValue());
                }
            }

            @Override
            public Double read(JsonReader in) throws IOException {
                return in.nextDouble();
            }
        };
    }

    private static TypeAdapter<Float> finiteOrNullFloat() {
        return new TypeAdapter<>() {
            @Override
            public void write(JsonWriter out, Float v) throws IOException {
                if (v == null || !Float.isFinite(v)) {
                    out.nullValue();
                } else {
                    out.value(v);  // as Number: Float.toString, the float's shortest form ("-0.5", not "-0.5000000")
                }
            }

            @Override
            public Float read(JsonReader in) throws IOException {
                return (float) in.nextDouble();
            }
        };
    }

    /**
     * Writes records component by component (Java gives their order; Gson's reflection does not promise it), with
     * snake_case names, leaving out null components marked {@link OmitWhenNull}. Reading is Gson's own.
     */
    private static final class Records implements TypeAdapterFactory {
        @Override
        @SuppressWarnings("unchecked")
        public <T> TypeAdapter<T> create(Gson gson, TypeToken<T> type) {
            Class<? super T> raw = type.getRawType();
            if (!raw.isRecord()) {
                return null;
            }
            TypeAdapter<T> reader = gson.getDelegateAdapter(this, type);
            RecordComponent[] components = raw.getRecordComponents();
            String[] names = new String[components.length];
            TypeAdapter<Object>[] values = new TypeAdapter[components.length];
            boolean[] omitNull = new boolean[components.length];
            for (int i = 0; i < components.length; i++) {
                RecordComponent c = components[i];
                c.getAccessor().setAccessible(true);
                names[i] = snakeCase(c.getName());
                values[i] = (TypeAdapter<Object>) gson.getAdapter(TypeToken.get(c.getGenericType()));
                omitNull[i] = c.isAnnotationPresent(OmitWhenNull.class);
            }
            return new TypeAdapter<>() {
                @Override
                public void write(JsonWriter out, T record) throws IOException {
                    if (record == null) {
                        out.nullValue();
                        return;
                    }
                    out.beginObject();
                    for (int i = 0; i < components.length; i++) {
                        Object v;
                        try {
                            v = components[i].getAccessor().invoke(record);
                        } catch (ReflectiveOperationException e) {
                            throw new IllegalStateException("cannot read " + raw.getSimpleName() + "." + components[i].getName(), e);
                        }
                        if (v == null && omitNull[i]) {
                            continue;
                        }
                        out.name(names[i]);
                        values[i].write(out, v);  // a component declared Object is written as what it holds (Gson's Object adapter)
                    }
                    out.endObject();
                }

                @Override
                public T read(JsonReader in) throws IOException {
                    return reader.read(in);
                }
            };
        }
    }
}
