package dev.steer.steer;

import dev.steer.engine.GenerationRequest;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * The steerable sessions: every chat completion, kept for a while after it finishes, and at most {@code max} of them.
 * When full, a new one pushes out the session that finished longest ago; when every session is running (or about to),
 * it is refused ({@link FullException}, a 429) and nothing is opened for it.
 *
 * <p>Expiry is cheap: finished sessions are kept in the order they finished, so {@code open} / {@code get} /
 * {@code size} only look at the ones whose TTL is up (and one more), not at every session. That order is the order of
 * the finish events; it is also the order of their times unless the clock goes backwards, which only delays expiry.
 *
 * <p>Locking: one lock guards both maps. A {@link Session} calls in ({@link #finished}, {@link #live}) while holding its
 * own lock; this class never takes a session's lock while holding its own, so the two cannot deadlock.
 */
public final class Sessions {
    /** {@code --max-sessions}' default. */
    public static final int DEFAULT_MAX = 1024;

    private final Object lock = new Object();
    private final HashMap<String, Session> byId = new HashMap<>();
    /** the finished sessions (by identity), in the order they finished, each with the time it did */
    private final LinkedHashMap<Session, Long> finished = new LinkedHashMap<>();
    private final long ttlMillis;
    private final int max;
    private final LongSupplier clock;

    /** @param ttlMillis how long a finished session stays steerable */
    public Sessions(long ttlMillis) {
        this(ttlMillis, System::currentTimeMillis);
    }

    /** @param clock epoch milliseconds: sessions are stamped and expire by it (a test's clock need not sleep) */
    public Sessions(long ttlMillis, LongSupplier clock) {
        this(ttlMillis, DEFAULT_MAX, clock);
    }

    /** @param max the most sessions held at once, running and finished together (at least 1) */
    public Sessions(long ttlMillis, int max, LongSupplier clock) {
        if (max < 1) {
            throw new IllegalArgumentException("max sessions must be at least 1, not " + max);
        }
        this.ttlMillis = ttlMillis;
        this.max = max;
        this.clock = clock;
    }

    /** The time sessions are stamped with. */
    public long now() {
        return clock.getAsLong();
    }

    /** The most sessions held at once. */
    public int max() {
        return max;
    }

    /**
     * A new session: not finished (so it does not expire, nor is it pushed out) until its generation finishes or
     * fails to start.
     *
     * @param model          the base model id (what steer records are filed under)
     * @param pinnedModel    the name that selects the adapter this completion uses
     * @param adapterVersion that adapter ("v2"), null for the base model
     * @throws FullException {@code max} sessions are held and none has finished; nothing was opened
     */
    public Session open(String id, String model, String pinnedModel, String adapterVersion, String requestJson, GenerationRequest request) {
        Session s = new Session(id, model, pinnedModel, adapterVersion, requestJson, request, clock, this);
        synchronized (lock) {
            expire(clock.getAsLong());
            if (byId.size() >= max && !byId.containsKey(id)) {
                Iterator<Session> oldest = finished.keySet().iterator();
                if (!oldest.hasNext()) {
                    throw new FullException(max);
                }
                byId.remove(oldest.next().id);
                oldest.remove();
            }
            Session previous = byId.put(id, s);
            if (previous != null) {
                finished.remove(previous);
            }
        }
        return s;
    }

    /** The session, unless unknown, expired or pushed out. */
    public Optional<Session> get(String id) {
        synchronized (lock) {
            expire(clock.getAsLong());
            return Optional.ofNullable(byId.get(id));
        }
    }

    /** Sessions held now: running, or finished within the TTL (and not pushed out). */
    public int size() {
        synchronized (lock) {
            expire(clock.getAsLong());
            return byId.size();
        }
    }

    /** Forgets {@code s} at once (a completion refused after its session was opened, e.g. a full queue). */
    public void discard(Session s) {
        synchronized (lock) {
            byId.remove(s.id, s);
            finished.remove(s);
        }
    }

    /** {@code s} finished (or failed to start) at {@code at}: from now on it expires, and may be pushed out. */
    void finished(Session s, long at) {
        synchronized (lock) {
            if (byId.get(s.id) == s) {
                finished.remove(s);   // to the end: it is now the latest to finish
                finished.put(s, at);
            }
        }
    }

    /** {@code s} is about to run again (a steer's continuation): it neither expires nor is pushed out meanwhile. */
    void live(Session s) {
        synchronized (lock) {
            finished.remove(s);
        }
    }

    private void expire(long now) {
        for (Iterator<Map.Entry<Session, Long>> it = finished.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Session, Long> e = it.next();
            if (now - e.getValue() <= ttlMillis) {
                return;  // the rest finished later
            }
            byId.remove(e.getKey().id, e.getKey());
            it.remove();
        }
    }

    /** {@code max} sessions are held and every one is running or about to: a new completion is refused (429). */
    public static final class FullException extends RuntimeException {
        public FullException(int max) {
            super("The server holds its most steerable sessions (" + max + ", --max-sessions) and all are still running; "
                    + "try again when one finishes.");
        }
    }
}
