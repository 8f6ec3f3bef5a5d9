package dev.steer.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import dev.steer.engine.Engine;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import dev.steer.testing.BlockingListener;
import dev.steer.testing.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What serves and what the registry says stay the same when loading an adapter fails. */
class ServedAdaptersTest {
    private static final String SHA = "tiny-sha";

    @TempDir
    Path dir;

    private final LlamaModel model = TestModels.tinyLlama();
    private Engine engine;
    private AdapterRegistry registry;

    @BeforeEach
    void open() throws Exception {
        Files.createDirectories(dir.resolve("scratch"));
        engine = new Engine(model, new Engine.Config(1, 512, 64, 1, 1));
        registry = AdapterRegistry.open(dir.resolve("steers.db"), dir.resolve("adapters"));
    }

    @AfterEach
    void close() {
        registry.close();
        engine.close();
    }

    /** A fresh (untrained) adapter file for the tiny model, registered as trained on the base {@code sha}. */
    private AdapterRegistry.Version register(String sha, int seed) {
        Path file = dir.resolve("scratch").resolve("adapter-" + seed + ".gguf");
        try (LoraTrainer t = LoraTrainer.create(model, List.of("attn_q"), 2, 4f, seed, 1)) {
            t.save(file);
        }
        return registry.register(file, new AdapterRegistry.Lineage("tiny", sha, "job", List.of(), List.of(), new JsonObject(), new JsonObject(), "passed"));
    }

    /**
     * An active version with a scope serves the plain name only for prompts in its scope, the base model the rest (and
     * says so); a pinned name and a submit without a prompt (the job's own generation) are not routed.
     */
    @Test
    void anActiveVersionWithAScopeServesThePlainNameOnlyInItsScope() throws Exception {
        int[] near = model.tokenize("hello world, the steer model", true, true);
        int[] far = model.tokenize("in and of it: token assistant", true, true);
        Path file = dir.resolve("scratch").resolve("scoped.gguf");
        try (LoraTrainer t = LoraTrainer.create(model, List.of("attn_q"), 2, 4f, 1, 1)) {
            t.save(file);
        }
        AdapterRegistry.Version v = registry.register(file, new AdapterRegistry.Lineage("tiny", SHA, "job", List.of(), List.of(),
                new JsonObject(), new JsonObject(), "passed"), new Scope(List.of(near), List.of(far), 0, 0));
        AdapterRegistry.Version everywhere = register(SHA, 2);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        served.activate(v.version(), "test");
        String pinned = "tiny@v" + v.version();
        assertEquals(pinned, served.submit("tiny", near, sel -> sel).model());
        assertEquals(v.version(), served.submit("tiny", near, sel -> sel).version());
        assertEquals(new ServedAdapters.Selection("tiny@base", "tiny@base", null, null), served.submit("tiny", far, sel -> sel),
                "outside the scope: the base model, named");
        assertEquals(v.version(), served.submit(pinned, far, sel -> sel).version(), "a pinned version is not routed");
        assertEquals(v.version(), served.submit("tiny", sel -> sel).version(), "no prompt: not routed");
        served.activate(everywhere.version(), "test");
        assertEquals(everywhere.version(), served.submit("tiny", far, sel -> sel).version(), "a version without a scope serves every prompt");
        served.closeAll();
    }

    /** Each kind of model name selects what it names; a name of no registered version is refused, saying which. */
    @Test
    void modelNamesSelectTheActiveVersionThePinnedOneOrTheBase() throws Exception {
        AdapterRegistry.Version v1 = register(SHA, 1);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        assertEquals(new ServedAdapters.Selection("tiny", "tiny@base", null, null), served.submit("tiny", sel -> sel), "nothing active");
        served.activate(v1.version(), "test");
        ServedAdapters.Selection active = served.submit(null, sel -> sel);
        assertEquals("tiny@v" + v1.version(), active.model(), "no name: the active version, named by its pin");
        assertEquals(v1.version(), active.version());
        assertTrue(active.adapter() != null);
        assertEquals(new ServedAdapters.Selection("tiny@base", "tiny@base", null, null), served.submit("tiny@base", sel -> sel));
        assertEquals(active, served.submit("tiny@v" + v1.version(), sel -> sel), "pinned: the same version and adapter");
        ServedAdapters.UnknownModelException unregistered = assertThrows(ServedAdapters.UnknownModelException.class,
                () -> served.submit("tiny@v" + (v1.version() + 1), sel -> sel));
        assertEquals("The model 'tiny@v" + (v1.version() + 1) + "' does not exist: no adapter version 'v" + (v1.version() + 1) + "'.",
                unregistered.getMessage());
        ServedAdapters.UnknownModelException badSuffix = assertThrows(ServedAdapters.UnknownModelException.class,
                () -> served.submit("tiny@latest", sel -> sel));
        assertEquals("The model 'tiny@latest' does not exist: no adapter version 'latest'.", badSuffix.getMessage());
        ServedAdapters.UnknownModelException other = assertThrows(ServedAdapters.UnknownModelException.class,
                () -> served.submit("gpt-5", sel -> sel));
        assertTrue(other.getMessage().startsWith("The model 'gpt-5' does not exist; this server serves 'tiny'"), other.getMessage());
        served.closeAll();
    }

    @Test
    void aRollbackWhoseLoadFailsChangesNothing() throws Exception {
        AdapterRegistry.Version v1 = register(SHA, 1);
        AdapterRegistry.Version v2 = register(SHA, 2);
        ServedAdapters first = new ServedAdapters(engine, registry, "tiny", SHA);
        first.activate(v1.version(), "test");
        first.activate(v2.version(), "test");
        first.closeAll();

        // As after a restart: only v2 is loaded; v1's file is now unreadable.
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        assertEquals(v2.version(), served.active());
        Files.writeString(registry.file(v1), "not a gguf file");
        assertThrows(RuntimeException.class, served::rollback);
        assertEquals(v2.version(), served.active(), "still serving v2");
        assertEquals(v2.version(), registry.active(), "the registry still says v2");

        // A good file again: the rollback goes through, both agree.
        Files.delete(registry.file(v1));
        Files.copy(registry.file(v2), registry.file(v1));
        assertEquals(v1.version(), served.rollback());
        assertEquals(v1.version(), registry.active());
        served.closeAll();
    }

    @Test
    void rollingBackPastADeletedVersionKeepsServingAndRegistryTogether() throws Exception {
        AdapterRegistry.Version v1 = register(SHA, 1);
        AdapterRegistry.Version v2 = register(SHA, 2);
        AdapterRegistry.Version v3 = register(SHA, 3);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        served.activate(v1.version(), "test");
        served.activate(v2.version(), "test");
        served.activate(v3.version(), "test");
        served.delete(v2.version());
        assertEquals(v1.version(), served.rollback());
        assertEquals(v1.version(), registry.active());
        assertEquals(null, served.rollback(), "back to the base model, past the deleted v2");
        assertEquals(null, registry.active());
        assertEquals(null, served.active());
        served.closeAll();
    }

    @Test
    void anAdapterTrainedOnAnotherBaseIsRefusedAndNothingChanges() throws Exception {
        AdapterRegistry.Version other = register("another-base", 1);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> served.activate(other.version(), "test"));
        assertEquals(true, e.getMessage().contains("another base model"), e.getMessage());
        assertEquals(null, served.active());
        assertEquals(null, registry.active());
        served.closeAll();
    }

    /**
     * A data dir used with another GGUF: its versions are not offered (/v1/models) and a request pinning one is an
     * unknown model (a 404 naming why), not a failure inside the server.
     */
    @Test
    void anAdapterTrainedOnAnotherBaseIsNotOfferedAndPinningItIsAnUnknownModel() throws Exception {
        AdapterRegistry.Version other = register("another-base", 1);
        AdapterRegistry.Version mine = register(SHA, 2);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        assertEquals(List.of("tiny", "tiny@" + mine.name().id()), served.modelNames());
        String pinned = "tiny@" + other.name().id();
        ServedAdapters.UnknownModelException e = assertThrows(ServedAdapters.UnknownModelException.class,
                () -> served.submit(pinned, sel -> sel));
        assertTrue(e.getMessage().contains("'" + pinned + "' cannot be served here") && e.getMessage().contains("another base model"),
                e.getMessage());
        assertEquals(mine.version(), served.submit("tiny@" + mine.name().id(), sel -> sel).version(), "its own version serves");
        served.closeAll();
    }

    /**
     * Issue 16: a pinned version that is not loaded is loaded under the lock every submit needs, by the decode
     * thread. With that thread held inside a step, the load used to wait for ever, and every submit behind it. Now it
     * gives up after its timeout with a clear error, the lock is free again, and a later load works.
     */
    @Test
    void aLoadTheDecodeThreadCannotRunInTimeIsAClearErrorAndFreesTheLock() throws Exception {
        AdapterRegistry.Version v1 = register(SHA, 1);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA, Duration.ofMillis(500));
        BlockingListener held = new BlockingListener();
        try {
            held.block(engine);
            RuntimeException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                    () -> assertThrows(RuntimeException.class, () -> served.submit("tiny@v" + v1.version(), sel -> sel)));
            assertTrue(e.getMessage().contains("not loaded within"), e.getMessage());
            assertEquals(null, assertTimeoutPreemptively(Duration.ofSeconds(1), served::active), "the lock is free");
        } finally {
            held.release.countDown();
        }
        ServedAdapters.Selection sel = assertTimeoutPreemptively(Duration.ofSeconds(20),
                () -> served.submit("tiny@v" + v1.version(), x -> x));
        assertTrue(sel.adapter() != null && !sel.adapter().isClosed(), "loaded once the decode thread is free");
        served.closeAll();
    }

    /** A deleted version's number is not given again: its activations (and anything else naming it) still mean it. */
    @Test
    void aDeletedVersionsNumberIsNotReused() throws Exception {
        register(SHA, 1);
        AdapterRegistry.Version v2 = register(SHA, 2);
        ServedAdapters served = new ServedAdapters(engine, registry, "tiny", SHA);
        served.activate(v2.version(), "test");
        served.activate(null, "test");
        served.delete(v2.version());
        AdapterRegistry.Version v3 = register(SHA, 3);
        assertEquals(3, v3.version(), "after v1 and a deleted v2");
        served.delete(v3.version());
        registry.close();
        registry = AdapterRegistry.open(dir.resolve("steers.db"), dir.resolve("adapters"));  // the counter is stored
        assertEquals(4, register(SHA, 4).version(), "the highest version deleted, never activated, and the registry reopened");
    }

    /**
     * A server stopped during a job, after its adapter was registered for the gate: at the next start the adapter is
     * marked as never checked ("error", not "pending" forever) and the failed job names it.
     */
    @Test
    void aJobCutOffAfterRegisteringNamesItsAdapterAndTheAdapterIsNotPendingForever() throws Exception {
        Path file = dir.resolve("scratch").resolve("pending.gguf");
        try (LoraTrainer t = LoraTrainer.create(model, List.of("attn_q"), 2, 4f, 5, 1)) {
            t.save(file);
        }
        AdapterRegistry.Version v = registry.register(file, new AdapterRegistry.Lineage("tiny", SHA, "ftjob-cut", List.of(), List.of(),
                new JsonObject(), new JsonObject(), "pending"));
        try (dev.steer.train.JobStore jobs = dev.steer.train.JobStore.open(dir.resolve("steers.db"))) {
            jobs.insert("ftjob-cut", new dev.steer.train.JobSpec("tiny", dev.steer.train.Hyperparameters.Method.SFT,
                    dev.steer.train.Hyperparameters.defaults(dev.steer.train.Hyperparameters.Method.SFT), dev.steer.train.JobSpec.Filters.all(),
                    dev.steer.train.EvalGate.Settings.defaults()));
            jobs.start("ftjob-cut");
        }
        registry.close();  // the server stops
        registry = AdapterRegistry.open(dir.resolve("steers.db"), dir.resolve("adapters"));
        try (dev.steer.train.JobStore jobs = dev.steer.train.JobStore.open(dir.resolve("steers.db"))) {
            assertEquals(1, jobs.failInterrupted());
            dev.steer.train.JobStore.Job j = jobs.get("ftjob-cut").orElseThrow();
            assertEquals(dev.steer.train.JobStore.Status.FAILED, j.status());
            assertEquals(v.version(), j.adapterVersion());
        }
        assertEquals("error", registry.get(v.version()).orElseThrow().gate());
    }
}
