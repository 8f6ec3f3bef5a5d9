package dev.steer.adapters;

import dev.steer.adapters.AdapterVersion.ModelName;
import dev.steer.engine.Engine;
import dev.steer.engine.EngineUnavailableException;
import dev.steer.llama.LoraAdapter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which adapter a request generates with, and hot-swapping the active one.
 *
 * <p>Model names: {@code <base>} follows the active version (what a plain OpenAI client gets); {@code <base>@v3}
 * pins version 3; {@code <base>@base} pins the base model with no adapter. Activation loads the new adapter (on the
 * decode thread, between two steps: the only stall serving sees), then switches new requests to it; generations
 * already running finish on the adapter they started with, and the engine frees an old adapter after its last user.
 *
 * <p>Routing: an active version with a {@link Scope} (what a job trains by default) serves a request under the plain
 * name only when the request's prompt is in its scope; any other prompt gets the base model, and the selection says
 * so ({@code <base>@base}). A pinned {@code <base>@vN} always gets its version.
 */
public final class ServedAdapters {
    /** Adapters kept loaded besides the active one (pinned versions); the least recently used beyond that are freed. */
    static final int MAX_LOADED = 4;
    private static final Logger LOG = LoggerFactory.getLogger(ServedAdapters.class);

    /**
     * What a model name selects: the name to report, the name that pins exactly this choice, the version (null: the
     * base model) and its loaded adapter.
     */
    public record Selection(String model, String pinned, Integer version, LoraAdapter adapter) {}

    /**
     * The version was trained on another base model (its lineage names another file's SHA-256): a data dir used with
     * another GGUF. It is never served.
     */
    public static final class OtherBaseModelException extends IllegalStateException {
        OtherBaseModelException(String message) {
            super(message);
        }
    }

    /** The name is not this server's model or one of its adapter versions. */
    public static final class UnknownModelException extends RuntimeException {
        UnknownModelException(String message) {
            super(message);
        }
    }

    /** How long a load waits for the decode thread by default: /health calls a step longer than 30 s stuck. */
    public static final Duration LOAD_TIMEOUT = Duration.ofSeconds(30);

    private final Engine engine;
    private final Duration loadTimeout;
    private final AdapterRegistry registry;
    private final String baseModel;
    private final String baseSha256;
    private final Map<Integer, LoraAdapter> loaded = new LinkedHashMap<>(8, 0.75f, true);  // access order: LRU
    private final Map<Integer, Optional<Scope.Router>> routers = new HashMap<>();  // of versions that served: empty, every prompt
    private Integer active;

    /** Serves what the registry says is active; an adapter that cannot be loaded leaves the base serving. */
    public ServedAdapters(Engine engine, AdapterRegistry registry, String baseModel, String baseSha256) {
        this(engine, registry, baseModel, baseSha256, LOAD_TIMEOUT);
    }

    /** @param loadTimeout how long a load waits for the decode thread (which runs it between two steps) */
    public ServedAdapters(Engine engine, AdapterRegistry registry, String baseModel, String baseSha256, Duration loadTimeout) {
        this.engine = engine;
        this.loadTimeout = loadTimeout;
        this.registry = registry;
        this.baseModel = baseModel;
        this.baseSha256 = baseSha256;
        Integer want = registry.active();
        if (want != null) {
            try {
                loaded.put(want, load(want));
                routers.put(want, makeRouter(want));
                active = want;
            } catch (RuntimeException e) {
                LOG.warn("cannot serve adapter {} ({}); serving the base model", AdapterVersion.of(want), e.getMessage());
                registry.activate(null, AdapterVersion.of(want) + " could not be loaded");
            }
        }
    }

    public String baseModel() {
        return baseModel;
    }

    public synchronized Integer active() {
        return active;
    }

    /** The model names a client may use: the base, then every version trained on it. */
    public List<String> modelNames() {
        List<String> out = new ArrayList<>();
        out.add(baseModel);
        registry.list().stream().filter(v -> v.baseSha256().equals(baseSha256)).forEach(v -> out.add(v.name().modelName(baseModel)));
        return out;
    }

    /**
     * Resolves {@code model} and runs {@code submit} with it, atomically with respect to retiring adapters: what
     * {@code submit} hands to the engine cannot be freed under it.
     */
    public synchronized <T> T submit(String model, Function<Selection, T> submit) {
        return submit.apply(select(model, true));
    }

    /**
     * The same for a request with this prompt (its tokens as the engine sees them): the plain name is routed by it.
     * The route is computed outside this object's lock (a scope may read the prompt with a forward pass through the
     * blocks below the adapter, tens of milliseconds), so other requests are not held up behind it; if another version
     * became active meanwhile, the prompt is routed again, under the lock, by that version's scope.
     */
    public <T> T submit(String model, int[] prompt, Function<Selection, T> submit) {
        if (prompt == null || !(AdapterVersion.parseModelName(baseModel, model) instanceof ModelName.Active)) {
            return submit(model, submit);
        }
        Integer version;
        Optional<Scope.Router> router;
        synchronized (this) {
            version = active;
            router = version != null ? router(version) : Optional.empty();
        }
        boolean inScope = inScope(router, prompt, version);
        synchronized (this) {
            if (!Objects.equals(version, active)) {
                inScope = inScope(active != null ? router(active) : Optional.empty(), prompt, active);
            }
            return submit.apply(select(model, inScope));
        }
    }

    /**
     * Whether {@code version}'s router sends {@code prompt} to the adapter; with no router, yes. A router that fails
     * (a probe that cannot read this prompt) serves it too, as a version that cannot route does (makeRouter), rather
     * than fail the request.
     */
    private static boolean inScope(Optional<Scope.Router> router, int[] prompt, Integer version) {
        try {
            return router.map(r -> r.serves(prompt)).orElse(true);
        } catch (RuntimeException e) {
            LOG.warn("cannot route a prompt by the scope of adapter {} ({}); the adapter serves it", AdapterVersion.of(version), e.getMessage());
            return true;
        }
    }

    /** @param inScope whether the request's prompt is in the active version's scope (true when there is no prompt) */
    private Selection select(String model, boolean inScope) {
        return switch (AdapterVersion.parseModelName(baseModel, model)) {
            case ModelName.Active a -> {
                String pinned = AdapterVersion.pinnedName(baseModel, active);
                if (active == null) {
                    yield new Selection(baseModel, pinned, null, null);
                }
                if (!inScope) {
                    String base = AdapterVersion.pinnedName(baseModel, null);
                    yield new Selection(base, base, null, null);  // outside the active version's scope
                }
                yield new Selection(pinned, pinned, active, loaded.get(active));
            }
            case ModelName.Base b -> new Selection(model, model, null, null);
            case ModelName.Pinned p -> pinned(model, p.version().number());
            case ModelName.BadSuffix b -> throw noSuchVersion(model);
            case ModelName.OtherModel o -> throw new UnknownModelException("The model '" + model + "' does not exist; this server serves '"
                    + baseModel + "' and its adapter versions ('" + AdapterVersion.of(1).modelName(baseModel) + "', ...).");
        };
    }

    /** {@code model} pins {@code version}: loaded now if it is registered but not in memory. */
    private Selection pinned(String model, int version) {
        AdapterRegistry.Version v = registry.get(version).orElseThrow(() -> noSuchVersion(model));
        if (!v.baseSha256().equals(baseSha256)) {
            throw new UnknownModelException("The model '" + model + "' cannot be served here: " + otherBase(v).getMessage() + ".");
        }
        LoraAdapter a = loaded.get(version);
        if (a == null) {
            a = load(version);  // a pinned version not in memory: rare, so loading under the lock is acceptable
            loaded.put(version, a);
            evict();
        }
        return new Selection(model, model, version, a);
    }

    /** {@code model} is the served model's name with a suffix that names no registered version. */
    private UnknownModelException noSuchVersion(String model) {
        return new UnknownModelException("The model '" + model + "' does not exist: no adapter version '"
                + model.substring(baseModel.length() + 1) + "'.");
    }

    /** Makes {@code version} (null: the base model) serve new requests; returns the previous one. */
    public Integer activate(Integer version, String reason) {
        // Load outside the lock: requests keep being admitted while the file is read and the scope's vectors computed.
        LoraAdapter fresh = version != null && !isLoaded(version) ? load(version) : null;
        Optional<Scope.Router> router = version != null ? makeRouter(version) : Optional.empty();
        synchronized (this) {
            if (version != null) {
                routers.putIfAbsent(version, router);
            }
            keep(version, fresh);
            registry.activate(version, reason);
            Integer previous = active;
            active = version;
            evict();
            return previous;
        }
    }

    /** Rolls back to the version that served before the active one; returns the version now serving. */
    public Integer rollback() {
        // As activate: load first, then write the registry, so a load that fails changes nothing (the database and
        // what serves never disagree). The target is read again under the lock: an activation in between moves it.
        while (true) {
            Integer to = registry.rollbackTarget();
            LoraAdapter fresh = to != null && !isLoaded(to) ? load(to) : null;
            Optional<Scope.Router> router = to != null ? makeRouter(to) : Optional.empty();
            synchronized (this) {
                if (to != null) {
                    routers.putIfAbsent(to, router);
                }
                if (!Objects.equals(registry.rollbackTarget(), to)) {
                    if (fresh != null) {
                        engine.retire(fresh);
                    }
                    continue;
                }
                keep(to, fresh);
                registry.rollback();  // returns `to`: the target was read under this lock
                active = to;
                evict();
                return to;
            }
        }
    }

    /**
     * A version's router (its prompts' vectors), made when it is activated (outside this object's lock, {@link
     * #activate}) and kept; made here, under the lock, only if it is not yet.
     */
    private Optional<Scope.Router> router(int version) {
        return routers.computeIfAbsent(version, this::makeRouter);
    }

    /**
     * The router of {@code version}'s scope; empty (every prompt) when it has none, and when its scope cannot be
     * read: a version that cannot route serves as every version before scopes did, rather than fail every request.
     */
    private Optional<Scope.Router> makeRouter(int version) {
        try {
            return registry.scope(version).map(s -> s.router(engine.model(), engine::layerProbe));
        } catch (RuntimeException e) {
            LOG.warn("cannot read the scope of adapter {} ({}); it serves every prompt", AdapterVersion.of(version), e.getMessage());
            return Optional.empty();
        }
    }

    private synchronized boolean isLoaded(int version) {
        return loaded.containsKey(version);
    }

    private void keep(Integer version, LoraAdapter fresh) {
        if (fresh != null && loaded.putIfAbsent(version, fresh) != null) {
            engine.retire(fresh);  // loaded by someone else meanwhile
        }
    }

    /** Deletes a version that is not serving; the engine frees it after its last pinned generation. */
    public synchronized void delete(int version) {
        registry.delete(version);
        routers.remove(version);
        LoraAdapter a = loaded.remove(version);
        if (a != null) {
            engine.retire(a);
        }
    }

    private void evict() {
        int budget = MAX_LOADED + (active == null ? 0 : 1);
        for (Iterator<Map.Entry<Integer, LoraAdapter>> it = loaded.entrySet().iterator(); it.hasNext() && loaded.size() > budget; ) {
            Map.Entry<Integer, LoraAdapter> e = it.next();
            if (!e.getKey().equals(active)) {
                it.remove();
                engine.retire(e.getValue());
            }
        }
    }

    private OtherBaseModelException otherBase(AdapterRegistry.Version v) {
        return new OtherBaseModelException("adapter " + v.name() + " was trained on another base model (sha256 " + v.baseSha256()
                + "), not on '" + baseModel + "' (sha256 " + baseSha256 + ")");
    }

    private LoraAdapter load(int version) {
        AdapterRegistry.Version v = registry.get(version).orElseThrow(() -> new UnknownModelException("no adapter version " + AdapterVersion.of(version)));
        if (!v.baseSha256().equals(baseSha256)) {
            throw otherBase(v);
        }
        CompletableFuture<LoraAdapter> loading = engine.onDecodeThread(() -> LoraAdapter.load(engine.model(), registry.file(v)));
        try {
            // Bounded: a pinned load runs under this object's lock, which every submit needs, and the decode thread
            // may be stuck inside a step (see /health).
            return loading.get(loadTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            // The task stays queued and may still load it, once the decode thread is free: nothing will use that
            // copy, so it is freed then.
            loading.thenAccept(engine::retire);
            throw new EngineUnavailableException("adapter " + AdapterVersion.of(version) + " was not loaded within " + loadTimeout.toMillis()
                    + " ms: the decode loop is busy or stuck (see /health); try again");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            loading.thenAccept(engine::retire);
            throw new IllegalStateException("interrupted while loading adapter " + AdapterVersion.of(version));
        }
    }

    /** Frees every adapter; only after the engine is closed. */
    public synchronized void closeAll() {
        for (LoraAdapter a : loaded.values()) {
            try {
                a.close();
            } catch (IllegalStateException stillSet) {
                // Set on a context a stuck decode thread still holds (Engine.close): the process is ending; the rest
                // of shutdown must still run.
                LOG.warn("adapter not closed: {}", stillSet.getMessage());
            }
        }
        loaded.clear();
    }
}
