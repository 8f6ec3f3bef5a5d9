package dev.steer.http;

import dev.steer.json.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

/**
 * The errors Jetty answers itself, before any route runs: a path that is not UTF-8, headers too large, an HTTP
 * version it does not speak, a request line it cannot parse. In OpenAI's error shape like every other error, not
 * Jetty's HTML page (the fuzz suite found them, issue 16). The status stays Jetty's: 400, 414, 431, and 505 for
 * an unsupported HTTP version (HTTP's own code for it, though the client's doing).
 */
final class JettyErrors extends ErrorHandler {
    @Override
    protected void generateResponse(Request request, Response response, int code, String message, Throwable cause, Callback callback)
            throws IOException {
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.write(true, ByteBuffer.wrap(json(code, message)), callback);
    }

    /** A message the parser refused: what is written before the connection closes. */
    @Override
    public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
        fields.put(HttpHeader.CONTENT_TYPE, "application/json");
        return ByteBuffer.wrap(json(status, reason));
    }

    private static byte[] json(int code, String message) {
        String why = message == null || message.isBlank() ? HttpStatus.getMessage(code) : message;
        // 505 is the client's doing too (an HTTP version no server here speaks).
        ApiError e = new ApiError(code, code >= 500 && code != 505 ? "server_error" : "invalid_request_error", "The HTTP request could not be read: "
                + why + ".", null, code == 505 ? "http_version_not_supported" : "invalid_http_request");
        return Json.write(e.body()).getBytes(StandardCharsets.UTF_8);
    }
}
