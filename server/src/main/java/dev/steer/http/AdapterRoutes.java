package dev.steer.http;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.steer.adapters.AdapterRegistry;
import dev.steer.adapters.AdapterVersion;
import dev.steer.adapters.ServedAdapters;
import io.javalin.http.Context;

/** /v1/adapters: the registry's versions, which one serves, activation and rollback. */
final class AdapterRoutes {
    private final AdapterRegistry registry;
    private final ServedAdapters served;

    AdapterRoutes(AdapterRegistry registry, ServedAdapters served) {
        this.registry = registry;
        this.served = served;
    }

    void list(Context ctx) {
        JsonArray data = new JsonArray();
        registry.list().forEach(v -> data.add(json(v)));
        JsonObject o = new JsonObject();
        o.addProperty("object", "list");
        o.add("data", data);
        o.addProperty("active", AdapterVersion.idOrNull(served.active()));
        Respond.json(ctx, 200, o);
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
        JsonObject o = new JsonObject();
        o.addProperty("id", v.id());
        o.addProperty("object", "adapter.deleted");
        o.addProperty("deleted", true);
        Respond.json(ctx, 200, o);
    }

    /** POST /v1/adapters/{version}/activate; "base" serves the base model alone. */
    void activate(Context ctx) {
        Integer version = ctx.pathParam("version").equals(AdapterVersion.BASE) ? null : version(ctx).version();
        served.activate(version, "activated through the API");
        Respond.json(ctx, 200, state());
    }

    /** POST /v1/adapters/rollback: back to what served before the current activation. */
    void rollback(Context ctx) {
        try {
            served.rollback();
        } catch (IllegalStateException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), null, "nothing_to_roll_back");
        }
        Respond.json(ctx, 200, state());
    }

    private JsonObject state() {
        Integer active = served.active();
        JsonObject o = new JsonObject();
        o.addProperty("object", "adapter.activation");
        o.addProperty("active", AdapterVersion.idOrNull(active));
        o.addProperty("model", active == null ? served.baseModel() : AdapterVersion.of(active).modelName(served.baseModel()));
        return o;
    }

    private AdapterRegistry.Version version(Context ctx) {
        String v = ctx.pathParam("version");
        AdapterRegistry.Version found = AdapterVersion.parse(v).flatMap(n -> registry.get(n.number())).orElse(null);
        if (found == null) {
            throw new ApiError(404, "invalid_request_error", "No adapter version '" + v + "' (versions are named v1, v2, ...).", "version", "adapter_not_found");
        }
        return found;
    }

    private JsonObject json(AdapterRegistry.Version v) {
        JsonObject o = new JsonObject();
        o.addProperty("object", "adapter");
        o.addProperty("id", v.id());
        o.addProperty("model", v.name().modelName(v.baseModel()));
        o.addProperty("base_model", v.baseModel());
        o.addProperty("base_sha256", v.baseSha256());
        o.addProperty("active", Integer.valueOf(v.version()).equals(served.active()));
        o.addProperty("job_id", v.jobId());
        o.addProperty("created_at", v.createdAt() / 1000);
        o.addProperty("gate", v.gate());
        JsonArray steers = new JsonArray();
        v.steerIds().forEach(steers::add);
        o.add("steer_ids", steers);
        JsonArray held = new JsonArray();
        v.heldOutIds().forEach(held::add);
        o.add("held_out_ids", held);
        o.add("hyperparameters", v.hyperparameters());
        o.add("metrics", v.metrics());
        return o;
    }
}
