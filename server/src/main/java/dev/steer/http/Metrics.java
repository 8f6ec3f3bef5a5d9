package dev.steer.http;

import dev.steer.engine.Engine;
import dev.steer.engine.EngineStats;
import dev.steer.steer.Sessions;

/** GET /metrics: the engine's counters in Prometheus' text format. */
final class Metrics {
    private Metrics() {}

    static String render(Engine engine, Sessions sessions) {
        EngineStats s = engine.stats();
        StringBuilder out = new StringBuilder();
        counter(out, "steer_requests_total", "Generation requests accepted.", s.requests.get());
        counter(out, "steer_requests_rejected_total", "Generation requests refused because the queue was full.", s.rejected.get());
        counter(out, "steer_prompt_tokens_total", "Prompt tokens computed (prefilled).", s.promptTokensComputed.get());
        counter(out, "steer_prompt_tokens_cached_total", "Prompt tokens reused from the KV cache.", s.promptTokensCached.get());
        counter(out, "steer_generated_tokens_total", "Tokens generated.", s.generatedTokens.get());
        counter(out, "steer_decode_calls_total", "Decode calls (batches).", s.decodeCalls.get());
        gauge(out, "steer_queue_depth", "Requests waiting for a free sequence.", s.queued.get());
        gauge(out, "steer_active_sequences", "Sequences generating now.", s.active.get());
        // The watchdog's number: /health says stuck once it passes --decode-step-timeout-s.
        gauge(out, "steer_decode_step_seconds", "How long the decode thread has been inside its current step (0: waiting for work).",
                engine.stepNanos() / 1e9);
        double seconds = s.generationDecodeNanos.get() / 1e9;
        gauge(out, "steer_decode_tokens_per_second", "Generated tokens per second of generation-only decode time.",
                seconds > 0 ? s.generationDecodeTokens.get() / seconds : 0);
        // A count that only grows while traffic does not means sessions that never expire (a leak).
        gauge(out, "steer_sessions", "Steerable sessions held: running, or finished within --session-ttl.", sessions.size());
        gauge(out, "steer_kv_cache_tokens", "Tokens held in the KV cache.", s.kvTokens.get());
        gauge(out, "steer_kv_cache_usage_ratio", "Share of the KV cache in use.",
                (double) s.kvTokens.get() / (engine.contextPerSequence() * (double) engine.config().parallel()));
        return out.toString();
    }

    private static void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" counter\n");
        out.append(name).append(' ').append(value).append('\n');
    }

    private static void gauge(StringBuilder out, String name, String help, double value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" gauge\n");
        out.append(name).append(' ').append(value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value)).append('\n');
    }
}
