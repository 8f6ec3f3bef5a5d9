package dev.steer.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reading a streamed completion line by line, and the sessions gauge: what the session-bound HTTP tests share. */
public final class SseLines {
    private SseLines() {}

    /** The completion's id, once it has generated a token (so it is running, not queued). */
    public static String idAndFirstToken(Iterator<String> lines) {
        String line = lines.next();
        assertTrue(line.startsWith("data: {"), line);
        String id = JsonParser.parseString(line.substring(6)).getAsJsonObject().get("id").getAsString();
        while (lines.hasNext() && !lines.next().contains("\"content\":\"")) {
            // the role chunk carries "content":"" too; read on to a token
        }
        return id;
    }

    public static void drain(Iterator<String> lines) {
        while (lines.hasNext()) {
            lines.next();
        }
    }

    /** The {@code steer_sessions} gauge of /metrics. */
    public static int sessions(HttpClient http, TestServer server) throws Exception {
        String metrics = http.send(HttpRequest.newBuilder(URI.create(server.base() + "/metrics")).timeout(Duration.ofSeconds(20)).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        Matcher m = Pattern.compile("(?m)^steer_sessions (\\d+)$").matcher(metrics);
        assertTrue(m.find(), metrics);
        return Integer.parseInt(m.group(1));
    }
}
