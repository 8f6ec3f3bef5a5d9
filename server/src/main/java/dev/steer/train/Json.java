package dev.steer.train;

import com.google.gson.FieldNamingPolicy;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.util.Map;

/** Records as JSON objects with snake_case names, and NaN (a metric that does not apply) as null. */
public final class Json {
    private static final Gson SNAKE = new GsonBuilder().setFieldNamingPolicy(FieldNamingPolicy.LOWER_CASE_WITH_UNDERSCORES)
            .serializeSpecialFloatingPointValues().create();

    private Json() {}

    public static JsonObject tree(Object record) {
        JsonObject o = SNAKE.toJsonTree(record).getAsJsonObject();
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            if (e.getValue() instanceof JsonPrimitive p && p.isNumber() && !Double.isFinite(p.getAsDouble())) {
                e.setValue(com.google.gson.JsonNull.INSTANCE);
            }
        }
        return o;
    }
}
