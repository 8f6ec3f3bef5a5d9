package dev.steer.models;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;

/**
 * Downloads a file from a Hugging Face model repository into a local cache, with a progress bar on stderr.
 * HF_ENDPOINT overrides https://huggingface.co (mirrors, tests); HF_TOKEN is sent for gated repositories.
 */
public final class HuggingFace {
    private HuggingFace() {}

    public static Path cacheDir() {
        String c = System.getenv("STEER_CACHE");
        return (c != null && !c.isBlank() ? Path.of(c) : Path.of(System.getProperty("user.home"), ".cache", "steer")).resolve("models");
    }

    /** The cached file if present, else downloaded (to a temporary name, then moved into place). */
    public static Path download(String repo, String file, Path cache) throws IOException, InterruptedException {
        return download(System.getenv().getOrDefault("HF_ENDPOINT", "https://huggingface.co"), repo, file, cache);
    }

    public static Path download(String endpoint, String repo, String file, Path cache) throws IOException, InterruptedException {
        if (!repo.matches("[\\w.-]+/[\\w.-]+") || repo.contains("..") || file.contains("..") || file.startsWith("/")) {
            throw new IllegalArgumentException("not a Hugging Face repo/file: " + repo + " / " + file);
        }
        Path target = cache.resolve(repo).resolve(file);
        if (Files.isRegularFile(target) && Files.size(target) > 0) {
            return target;
        }
        Files.createDirectories(target.getParent());
        URI uri = URI.create(endpoint.replaceAll("/+$", "") + "/" + repo + "/resolve/main/" + file);
        HttpRequest.Builder req = HttpRequest.newBuilder(uri).GET();
        String token = System.getenv("HF_TOKEN");
        if (token != null && !token.isBlank()) {
            req.header("Authorization", "Bearer " + token);
        }
        HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30)).build();
        HttpResponse<InputStream> res = http.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
        if (res.statusCode() != 200) {
            res.body().close();
            throw new IOException("download of " + uri + " failed: HTTP " + res.statusCode()
                    + (res.statusCode() == 401 || res.statusCode() == 403 ? " (gated repository? set HF_TOKEN)" : ""));
        }
        long total = res.headers().firstValueAsLong("Content-Length").orElse(-1);
        Path part = target.resolveSibling(target.getFileName() + ".part");
        try (InputStream in = res.body(); OutputStream out = Files.newOutputStream(part)) {
            byte[] buf = new byte[1 << 20];
            long done = 0;
            long lastDraw = 0;
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                done += n;
                long now = System.nanoTime();
                if (now - lastDraw > 200_000_000L) {
                    // A progress bar redrawn in place on the terminal ("\r"), not a log event: stderr, not slf4j.
                    System.err.print("\r" + progressBar(file, done, total));
                    lastDraw = now;
                }
            }
            System.err.println("\r" + progressBar(file, done, total));
        }
        Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return target;
    }

    static String progressBar(String name, long done, long total) {
        String mb = String.format("%.1f MB", done / 1e6);
        if (total <= 0) {
            return name + " " + mb;
        }
        int width = 30;
        int filled = (int) (width * done / total);
        return String.format("%s [%s%s] %3d%% %s / %.1f MB", name, "#".repeat(filled), " ".repeat(width - filled),
                100 * done / total, mb, total / 1e6);
    }
}
