package dev.steer.http;

/**
 * An error as OpenAI reports it: {@code {"error": {"message", "type", "param", "code"}}} with an HTTP status.
 * Thrown anywhere below a route; {@link ApiServer} turns it into the response.
 */
public final class ApiError extends RuntimeException {
    public final int status;
    public final String type;
    public final String param;
    public final String code;

    public ApiError(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: the request is malformed; {@code param} names the field at fault. */
    public static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", message, param, null);
    }

    public static ApiError unauthorized() {
        return new ApiError(401, "invalid_request_error", "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'.",
                null, "invalid_api_key");
    }

    public static ApiError modelNotFound(String model) {
        return new ApiError(404, "invalid_request_error", "The model '" + model + "' does not exist on this server.",
                "model", "model_not_found");
    }

    public static ApiError notFound(String path) {
        return new ApiError(404, "invalid_request_error", "Unknown route: " + path, null, "not_found");
    }

    public static ApiError tooLarge(long limit) {
        return new ApiError(413, "invalid_request_error", "Request body exceeds " + limit + " bytes.", null, "request_too_large");
    }

    public static ApiError busy(String message) {
        return new ApiError(429, "rate_limit_exceeded", message, null, "server_busy");
    }

    /** The heap was full while serving the request: the server's state, not the request's fault; nothing changed. */
    public static ApiError outOfMemory() {
        return new ApiError(503, "server_error", "The server ran out of memory while handling this request; nothing was"
                + " changed. Try again later, or with a smaller request.", null, "insufficient_memory");
    }

    public static ApiError internal(String message) {
        return new ApiError(500, "server_error", message, null, null);
    }

    /** The body: {@code {"error": {...}}}, every field written (null {@code param} and {@code code} included). */
    record Body(Fields error) {}

    record Fields(String message, String type, String param, String code) {}

    public Body body() {
        return new Body(new Fields(getMessage(), type, param, code));
    }
}
