package dev.steer.json;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonObject;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The one configuration's rules: snake_case in declaration order, explicit nulls unless marked, NaN as null. */
class JsonTest {
    record Inner(int cachedTokens) {}

    record Outer(String zLast, int promptTokens, Inner promptTokensDetails, String nothing, @OmitWhenNull String omitted,
                 double notANumber, float logprob, double ratio, long createdAt, List<Float> values, Map<String, Float> top,
                 JsonObject tree, int[] bytes, String html, String baseSha256) {}

    @Test
    void recordsAreWrittenByTheRules() {
        JsonObject tree = new JsonObject();
        tree.add("kept_null", null);
        Outer o = new Outer("first", 3, new Inner(2), null, null, Double.NaN, -0.5f, 0.1, 1_700_000_000L, List.of(1.25f, Float.NEGATIVE_INFINITY),
                Map.of("a", -1.5f), tree, new int[] {104, 255}, "<b>&'", "x");
        assertEquals("{\"z_last\":\"first\",\"prompt_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":2},\"nothing\":null,"
                + "\"not_a_number\":null,\"logprob\":-0.5,\"ratio\":0.1,\"created_at\":1700000000,\"values\":[1.25,null],\"top\":{\"a\":-1.5},"
                + "\"tree\":{\"kept_null\":null},\"bytes\":[104,255],\"html\":\"<b>&'\",\"base_sha256\":\"x\"}", Json.write(o));
    }

    @Test
    void floatsKeepTheirShortestForm() {
        record F(float f) {}
        assertEquals("{\"f\":-0.12345679}", Json.write(new F(-0.12345679f)), "not the double's digits (-0.12345679104328156)");
    }

    @Test
    void aComponentDeclaredObjectIsWrittenAsWhatItHolds() {
        record Holder(Object value, List<?> items) {}
        assertEquals("{\"value\":{\"cached_tokens\":1},\"items\":[{\"cached_tokens\":4}]}",
                Json.write(new Holder(new Inner(1), List.of(new Inner(4)))));
    }

    @Test
    void snakeCaseIsGsonsLowerCaseWithUnderscores() {
        assertEquals("prompt_tokens_details", Json.snakeCase("promptTokensDetails"));
        assertEquals("base_sha256", Json.snakeCase("baseSha256"));
        assertEquals("id", Json.snakeCase("id"));
    }
}
