package dev.steer.steer;

import dev.steer.engine.GenerationRequest;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** The steerable sessions: every chat completion, kept for a while after it finishes. */
public final class Sessions {
    private final ConcurrentHashMap<String, Session> byId = new ConcurrentHashMap<>();
    private final long ttlMillis;

    /** @param ttlMillis how long a finished session stays steerable */
    public Sessions(long ttlMillis) {
        this.ttlMillis = ttlMillis;
    }

    /**
     * @param model          the base model id (what steer records are filed under)
     * @param pinnedModel    the name that selects the adapter this completion uses
     * @param adapterVersion that adapter ("v2"), null for the base model
     */
    public Session open(String id, String model, String pinnedModel, String adapterVersion, String requestJson, GenerationRequest request) {
        expire();
        Session s = new Session(id, model, pinnedModel, adapterVersion, requestJson, request);
        byId.put(id, s);
        return s;
    }

    /** The session, unless unknown or expired. */
    public Optional<Session> get(String id) {
        expire();
        return Optional.ofNullable(byId.get(id));
    }

    private void expire() {
        long now = System.currentTimeMillis();
        byId.values().removeIf(s -> s.expired(now, ttlMillis));
    }
}
