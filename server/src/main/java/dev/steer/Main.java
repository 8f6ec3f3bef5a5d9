package dev.steer;

import dev.steer.http.ApiServer;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.NativeLibrary;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code java -jar steer-server.jar --model PATH [--port N]}: load a GGUF model and serve it over HTTP. */
@Command(name = "steer", mixinStandardHelpOptions = true, version = "steer 0.1.0",
        description = "Serves a GGUF model with an OpenAI-compatible API and learns from steers.")
public final class Main implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, required = true, defaultValue = "${env:STEER_MODEL}",
            description = "GGUF model file (env STEER_MODEL).")
    Path model;

    @Option(names = "--host", defaultValue = "${env:STEER_HOST:-127.0.0.1}", description = "Address to listen on (default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "${env:STEER_PORT:-8080}", description = "Port to listen on (default ${DEFAULT-VALUE}).")
    int port;

    @Option(names = {"-ngl", "--gpu-layers"}, defaultValue = "${env:STEER_GPU_LAYERS:-0}",
            description = "Layers to offload to the GPU, -1 for all (default ${DEFAULT-VALUE}).")
    int gpuLayers;

    @Override
    public Integer call() throws InterruptedException {
        NativeLibrary.load();
        System.err.println(NativeLibrary.systemInfo());
        LlamaModel llama = LlamaModel.load(model, LlamaModel.Params.defaults().withGpuLayers(gpuLayers));
        String modelId = model.getFileName().toString().replaceFirst("\\.gguf$", "");
        ApiServer server = ApiServer.start(host, port, modelId, llama);
        System.err.printf("steer: serving %s (%s) on http://%s:%d%n", modelId, llama.info().description(), host, server.port());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop();
            stopped.countDown();
        }));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }
}
