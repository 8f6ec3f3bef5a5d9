package dev.steer.engine;

import java.util.concurrent.atomic.AtomicLong;

/** Counters the engine keeps for /metrics and for tests (monotonic unless named as a gauge). */
public final class EngineStats {
    public final AtomicLong requests = new AtomicLong();
    public final AtomicLong rejected = new AtomicLong();
    /** prompt tokens computed (prefilled) */
    public final AtomicLong promptTokensComputed = new AtomicLong();
    /** prompt tokens reused from the KV cache */
    public final AtomicLong promptTokensCached = new AtomicLong();
    public final AtomicLong generatedTokens = new AtomicLong();
    public final AtomicLong decodeCalls = new AtomicLong();
    /** steers applied to running generations */
    public final AtomicLong steers = new AtomicLong();
    /** wall time spent inside decode calls, nanoseconds */
    public final AtomicLong decodeNanos = new AtomicLong();
    /** time spent in decode calls that generated tokens (no prompt in the batch), nanoseconds */
    public final AtomicLong generationDecodeNanos = new AtomicLong();
    public final AtomicLong generationDecodeTokens = new AtomicLong();
    /** times the context's LoRA adapter changed between two decodes */
    public final AtomicLong adapterSwitches = new AtomicLong();
    /** the longest task run on the decode thread between two steps (loading an adapter), nanoseconds: a stall */
    public final AtomicLong longestTaskNanos = new AtomicLong();
    /** gauges */
    public final AtomicLong queued = new AtomicLong();
    public final AtomicLong active = new AtomicLong();
    public final AtomicLong kvTokens = new AtomicLong();
}
