package dev.steer.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The names of a version: "v3", "tiny@v3", "v3.gguf", "tiny@base", and what is not a version id. */
class AdapterVersionTest {
    @Test
    void aVersionIsNamedOneWayEverywhere() {
        AdapterVersion v = AdapterVersion.of(3);
        assertEquals("v3", v.id());
        assertEquals("tiny@v3", v.modelName("tiny"));
        assertEquals("v3.gguf", v.fileName());
        assertEquals("tiny@v3", AdapterVersion.pinnedName("tiny", 3));
        assertEquals("tiny@base", AdapterVersion.pinnedName("tiny", null));
        assertEquals("v3", AdapterVersion.idOrNull(3));
        assertNull(AdapterVersion.idOrNull(null), "the base model has no version id");
    }

    @Test
    void modelNamesAreReadAgainstTheServedModel() {
        assertEquals(new AdapterVersion.ModelName.Active(), AdapterVersion.parseModelName("tiny", "tiny"), "follows the active version");
        assertEquals(new AdapterVersion.ModelName.Active(), AdapterVersion.parseModelName("tiny", null), "no model given");
        assertEquals(new AdapterVersion.ModelName.Base(), AdapterVersion.parseModelName("tiny", "tiny@base"));
        assertEquals(new AdapterVersion.ModelName.Pinned(AdapterVersion.of(3)), AdapterVersion.parseModelName("tiny", "tiny@v3"));
        assertEquals(new AdapterVersion.ModelName.Pinned(AdapterVersion.of(12)), AdapterVersion.parseModelName("tiny", "tiny@v12"));
        // A base name that itself holds an "@": only the part after the served name is the suffix.
        assertEquals(new AdapterVersion.ModelName.Pinned(AdapterVersion.of(2)), AdapterVersion.parseModelName("org@tiny", "org@tiny@v2"));
        for (String bad : new String[] {"tiny@", "tiny@3", "tiny@v", "tiny@v0", "tiny@V1", "tiny@Base", "tiny@base ", "tiny@v1@v2",
                "tiny@v1234567890"}) {
            assertEquals(new AdapterVersion.ModelName.BadSuffix(bad.substring("tiny@".length())), AdapterVersion.parseModelName("tiny", bad), bad);
        }
        for (String other : new String[] {"other", "tin", "tiny2", "tiny-v1", "Tiny", "", "@v1", " tiny", "v1"}) {
            assertEquals(new AdapterVersion.ModelName.OtherModel(), AdapterVersion.parseModelName("tiny", other), other);
        }
    }

    @Test
    void onlyVersionIdsParse() {
        assertEquals(Optional.of(AdapterVersion.of(12)), AdapterVersion.parse("v12"));
        assertEquals(Optional.of(AdapterVersion.of(999_999_999)), AdapterVersion.parse("v999999999"));
        for (String no : new String[] {"12", "v", "v0", "V1", "base", "v1.5", "v-1", " v1", "v1234567890", "tiny@v1", ""}) {
            assertTrue(AdapterVersion.parse(no).isEmpty(), no);
        }
        assertTrue(AdapterVersion.parse(null).isEmpty());
        assertThrows(IllegalArgumentException.class, () -> AdapterVersion.of(0));
    }
}
