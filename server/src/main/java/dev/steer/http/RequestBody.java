package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON request body with typed, validated field access. Unknown fields are ignored (as OpenAI does); a field of the
 * wrong type or out of range is a 400 naming the field.
 */
final class RequestBody {
    /**
     * Longest integer literal read: a long has 19 digits; 64 characters leave room for a sign, a fraction of zeros and
     * an exponent, and spare parsing a megabyte of digits.
     */
    private static final int MAX_INTEGER_CHARS = 64;

    private final JsonObject json;
    private final String prefix;  // "hyperparameters." for a nested object: error messages name the full path

    private RequestBody(JsonObject json, String prefix) {
        this.json = json;
        this.prefix = prefix;
    }

    static RequestBody parse(String body) {
        JsonElement e;
        try {
            e = JsonParser.parseString(body);
        } catch (JsonParseException ex) {
            throw unparsable(ex);
        }
        if (e == null || !e.isJsonObject()) {
            throw ApiError.invalid(null, "The request body must be a JSON object.");
        }
        return new RequestBody(e.getAsJsonObject(), "");
    }

    /** A body built by the server (a request translated from another API), read by the same rules. */
    static RequestBody of(JsonObject json) {
        return new RequestBody(json, "");
    }

    /**
     * Gson wraps an OutOfMemoryError met while parsing in a JsonParseException. That is a full heap, not the
     * client's malformed JSON: a 503 that says so, never a misleading 400 (issue 16, item 5).
     */
    static ApiError unparsable(JsonParseException ex) {
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t instanceof OutOfMemoryError) {
                return ApiError.outOfMemory();
            }
        }
        return ApiError.invalid(null, "The request body is not valid JSON: " + ex.getMessage());
    }

    JsonObject json() {
        return json;
    }

    boolean has(String name) {
        return json.has(name) && !json.get(name).isJsonNull();
    }

    JsonElement raw(String name) {
        return has(name) ? json.get(name) : null;
    }

    String string(String name, String fallback) {
        if (!has(name)) {
            return fallback;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be a string.");
        }
        return e.getAsString();
    }

    boolean bool(String name, boolean fallback) {
        if (!has(name)) {
            return fallback;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be a boolean.");
        }
        return e.getAsBoolean();
    }

    double number(String name, double fallback, double min, double max) {
        if (!has(name)) {
            return fallback;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be a number.");
        }
        double v = e.getAsDouble();
        if (!(v >= min && v <= max)) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be between " + fmt(min) + " and " + fmt(max) + ", got " + fmt(v) + ".");
        }
        return v;
    }

    long integer(String name, long fallback, long min, long max) {
        if (!has(name)) {
            return fallback;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be an integer.");
        }
        // Read exactly, as written: through a double, 1e-20000 was 0 and so an integer; Gson's own getAsLong throws
        // (a 500) for exponents beyond 10,000, and 0e99999 is one.
        String text = e.getAsJsonPrimitive().getAsString();
        BigDecimal v;
        try {
            v = text.length() <= MAX_INTEGER_CHARS ? new BigDecimal(text) : null;
        } catch (NumberFormatException tooLarge) {
            v = null;  // an exponent beyond what BigDecimal holds
        }
        if (v == null) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be an integer between " + min + " and " + max + ".");
        }
        if (v.signum() != 0 && v.stripTrailingZeros().scale() > 0) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be an integer.");
        }
        if (v.compareTo(BigDecimal.valueOf(min)) < 0 || v.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be between " + min + " and " + max + ", got " + text + ".");
        }
        return v.signum() == 0 ? 0 : v.longValueExact();
    }

    JsonObject object(String name) {
        if (!has(name)) {
            return null;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonObject()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be an object.");
        }
        return e.getAsJsonObject();
    }

    /** A nested object read with the same checks (empty when absent). */
    RequestBody nested(String name) {
        JsonObject o = object(name);
        return new RequestBody(o == null ? new JsonObject() : o, prefix + name + ".");
    }

    JsonArray array(String name) {
        if (!has(name)) {
            return null;
        }
        JsonElement e = json.get(name);
        if (!e.isJsonArray()) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be an array.");
        }
        return e.getAsJsonArray();
    }

    /** A string or an array of strings (as OpenAI's {@code stop}); empty when absent. */
    List<String> strings(String name, int maxCount) {
        if (!has(name)) {
            return List.of();
        }
        JsonElement e = json.get(name);
        List<String> out = new ArrayList<>();
        if (e.isJsonPrimitive() && ((JsonPrimitive) e).isString()) {
            out.add(e.getAsString());
        } else if (e.isJsonArray()) {
            for (JsonElement x : e.getAsJsonArray()) {
                if (!x.isJsonPrimitive() || !x.getAsJsonPrimitive().isString()) {
                    throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be a string or an array of strings.");
                }
                out.add(x.getAsString());
            }
        } else {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' must be a string or an array of strings.");
        }
        if (out.size() > maxCount) {
            throw ApiError.invalid(prefix + name, "'" + prefix + name + "' may hold at most " + maxCount + " entries.");
        }
        return out;
    }

    private static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }
}
