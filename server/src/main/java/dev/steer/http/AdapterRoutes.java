package dev.steer.http;

import com.google.gson.JsonObject;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.AdapterVersion;
import dev.steer.adapters.ServedAdapters;
import io.javalin.http.Context;
import java.util.List;

/** /v1/adapters: the registry's versions, which one serves, activation and rollback. */
final class AdapterRoutes {
    private final AdapterRegistry registry;
    private final ServedAdapters served;

    /** GET /v1/adapters: every version, and the id of the one serving (null: the base model). */
    record AdapterList(String object, List<AdapterJson> data, String active) {}

    record AdapterJson(String object, String id, String model, String baseModel, String baseSha256, boolean active, String jobId,
                       long createdAt, String gate, List<String> steerIds, List<String> heldOutIds, JsonObject hyperparameters,
                       JsonObject metrics) {}

    record Deleted(String id, String object, boolean deleted) {}

    /** What serves after an activation or rollback: its id (null: the base model) and the model name that follows it. */
    record Activation(String object, String active, String model) {}

    AdapterRoutes(AdapterRegistry registry, ServedAdapters served) {
        this.registry = registry;
        this.served = served;
    }

    void list(Context ctx) {
        Respond.json(ctx, 200, new AdapterList("list", registry.list().stream().map(this::json).toList(),
                AdapterVersion.idOrNull(served.active())));
    }

    void get(Context ctx) {
        Respond.json(ctx, 200, json(version(ctx)));
    }

    void delete(Context ctx) {
        AdapterRegistry.Version v = version(ctx);
        try {
            served.delete(v.version());
        } catch (IllegalStateException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), "version", "adapter_active");
        }
        Respond.json(ctx, 200, new Deleted(v.id(), "adapter.deleted", true));
    }

    /** POST /v1/adapters/{version}/activate; "base" serves the base model alone. */
    void activate(Context ctx) {
        Integer version = ctx.pathParam("version").equals(AdapterVersion.BASE) ? null : version(ctx).version();
        try {
            served.activate(version, "activated through the API");
        } catch (ServedAdapters.OtherBaseModelException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), "version", "adapter_other_base_model");
        }
        Respond.json(ctx, 200, state());
    }

    /** POST /v1/adapters/rollback: back to what served before the current activation. */
    void rollback(Context ctx) {
        try {
            served.rollback();
        } catch (ServedAdapters.OtherBaseModelException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), null, "adapter_other_base_model");
        } catch (IllegalStateException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), null, "nothing_to_roll_back");
        }
        Respond.json(ctx, 200, state());
    }

    private Activation state() {
        Integer active = served.active();
        return new Activation("adapter.activation", AdapterVersion.idOrNull(active),
                active == null ? served.baseModel() : AdapterVersion.of(active).modelName(served.baseModel()));
    }

    private AdapterRegistry.Version version(Context ctx) {
        String v = ctx.pathParam("version");
        AdapterRegistry.Version found = AdapterVersion.parse(v).flatMap(n -> registry.get(n.number())).orElse(null);
        if (found == null) {
            throw new ApiError(404, "invalid_request_error", "No adapter version '" + v + "' (versions are named v1, v2, ...).", "version", "adapter_not_found");
        }
        return found;
    }

    private AdapterJson json(AdapterRegistry.Version v) {
        return new AdapterJson("adapter", v.id(), v.name().modelName(v.baseModel()), v.baseModel(), v.baseSha256(),
                Integer.valueOf(v.version()).equals(served.active()), v.jobId(), v.createdAt() / 1000, v.gate(), v.steerIds(),
                v.heldOutIds(), v.hyperparameters(), v.metrics());
    }
}
