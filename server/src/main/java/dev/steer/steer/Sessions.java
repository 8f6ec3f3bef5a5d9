package dev.steer.steer;

import dev.steer.engine.GenerationRequest;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/** The steerable sessions: every chat completion, kept for a while after it finishes. */
public final class Sessions {
    private final ConcurrentHashMap<String, Session> byId = new ConcurrentHashMap<>();
    private final long ttlMillis;
    private final LongSupplier clock;

    /** @param ttlMillis how long a finished session stays steerable */
    public Sessions(long ttlMillis) {
        this(ttlMillis, System::currentTimeMillis);
    }

    /** @param clock epoch milliseconds: sessions are stamped and expire by it (a test's clock need not sleep) */
    public Sessions(long ttlMillis, LongSupplier clock) {
        this.ttlMillis = ttlMillis;
        this.clock = clock;
    }

    /** The time sessions are stamped with. */
    public long now() {
        return clock.getAsLong();
    }

    /**
     * @param model          the base model id (what steer records are filed under)
     * @param pinnedModel    the name that selects the adapter this completion uses
     * @param adapterVersion that adapter ("v2"), null for the base model
     */
    public Session open(String id, String model, String pinnedModel, String adapterVersion, String requestJson, GenerationRequest request) {
        expire();
        Session s = new Session(id, model, pinnedModel, adapterVersion, requestJson, request, clock);
        byId.put(id, s);
        return s;
    }

    /** The session, unless unknown or expired. */
    public Optional<Session> get(String id) {
        expire();
        return Optional.ofNullable(byId.get(id));
    }

    /** Sessions held now: running, or finished within the TTL. */
    public int size() {
        expire();
        return byId.size();
    }

    private void expire() {
        long now = clock.getAsLong();
        byId.values().removeIf(s -> s.expired(now, ttlMillis));
    }
}
