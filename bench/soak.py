#!/usr/bin/env python3
"""Soak: N streaming clients for T minutes with random steers, stops and disconnects (issue 16).

Starts a Steer server from the jar, warms it up, takes a full GC (jcmd GC.run) and the RSS, then runs the clients.
Each client loops: a streaming chat of random length; after a few chunks it steers it live, stops it, hangs up
mid-stream, steers it once finished, or reads it to the end. At the end it waits for the queue and the active
sequences to be back to 0, takes a full GC again, and prints one JSON object: requests, errors (5xx, error events
inside a 200 stream, broken connections other than its own hang-ups), 429s, latencies (time to first token, steer
answer), RSS and heap after a full GC before and after (drift), queue / sequences / KV at the end; also the RSS every
--sample-s seconds, the RSS after each full GC split by mapping (Java heap range, glibc [heap], other anonymous, files),
and the RSS after a final malloc_trim (what the C allocator kept but had freed). glibc's MALLOC_* variables are read
when the process starts: set them in this script's environment (the server inherits it), not in the JVM.

  source scripts/java-home.sh
  python3 bench/soak.py --model ~/.cache/steer/models/tiny.gguf --streams 64 --minutes 10 --out bench/results/soak.json

The tiny model the tests write is enough to load the server's own code paths; a real model (SmolLM2) is slower per
token and so runs fewer requests in the same time.
"""
import argparse, http.client, json, os, random, re, socket, subprocess, sys, threading, time


JVM_OPTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "jvm.options")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.ttft = []
        self.steer_ms = []

    def count(self, k, n=1):
        with self.lock:
            self.counts[k] = self.counts.get(k, 0) + n

    def error(self, what):
        with self.lock:
            self.counts["errors"] = self.counts.get("errors", 0) + 1
            if len(self.errors) < 20:
                self.errors.append(what[:400])


def request(port, method, path, body=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, None if body is None else json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def metrics(port):
    _, data = request(port, "GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        m = re.match(r"^(steer_[a-z_]+) ([0-9.eE+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 1)


def client(port, stats, deadline, seed):
    rnd = random.Random(seed)
    while time.time() < deadline:
        action = rnd.choice(["read", "read", "steer", "steer", "stop", "hangup", "steer_finished"])
        body = {"stream": True, "temperature": rnd.choice([0, 0.8]), "max_tokens": rnd.randint(8, 96),
                "ignore_eos": action in ("steer", "stop", "hangup"),
                "messages": [{"role": "user", "content": rnd.choice(["hello", "tell me a story", "count", "why"])}]}
        stats.count("requests")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            t0 = time.perf_counter()
            c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status == 429:
                stats.count("429")
                r.read(); c.close(); time.sleep(0.2)
                continue
            if r.status != 200:
                data = r.read()
                (stats.error if r.status >= 500 else lambda w: stats.count("4xx"))(f"chat {r.status} {data[:200]!r}")
                c.close()
                continue
            sid, chunks, first, done = None, 0, None, False
            act_after = rnd.randint(1, 6)
            acted = False
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.decode("utf-8", "replace").strip()
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                o = json.loads(line[6:])
                if "error" in o:
                    stats.error("stream error event: " + line)
                    continue
                sid = o.get("id", sid)
                if o.get("choices") and o["choices"][0].get("delta", {}).get("content"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter()
                        stats.ttft.append((first - t0) * 1000)
                if not acted and chunks >= act_after and action in ("steer", "stop", "hangup"):
                    acted = True
                    if action == "hangup":
                        stats.count("hangups")
                        c.sock.shutdown(socket.SHUT_RDWR)
                        c.close()
                        break
                    if action == "steer":
                        s0 = time.perf_counter()
                        st, data = request(port, "POST", f"/v1/chat/completions/{sid}/steer",
                                           {"at": rnd.randint(0, chunks), "text": " and yet", "max_tokens": rnd.randint(4, 32)})
                        if st == 200:
                            stats.count("steers")
                            if data.startswith(b"{"):
                                stats.steer_ms.append((time.perf_counter() - s0) * 1000)
                        elif st >= 500:
                            stats.error(f"steer {st} {data[:200]!r}")
                        else:
                            stats.count("steer_4xx")
                    else:
                        st, data = request(port, "POST", f"/v1/chat/completions/{sid}/stop", {})
                        if st == 200:
                            stats.count("stops")
                        else:
                            stats.error(f"stop {st} {data[:200]!r}")
            if action != "hangup":
                c.close()
                if not done:
                    stats.error(f"stream ended without [DONE] ({action})")
            if action == "steer_finished" and done and sid:
                st, data = request(port, "POST", f"/v1/chat/completions/{sid}/steer",
                                   {"at": 0, "text": " instead", "max_tokens": 8})
                if st == 200 and b"[DONE]" in data and b'"error"' not in data:
                    stats.count("steers_finished")
                elif st >= 500 or st == 200:
                    stats.error(f"steer on finished {st} {data[:300]!r}")
                else:
                    stats.count("steer_4xx")
        except (OSError, http.client.HTTPException, ValueError) as e:
            stats.error(f"{action}: {e!r}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def full_gc(jcmd, pid):
    subprocess.run([jcmd, str(pid), "GC.run"], check=True, capture_output=True)
    time.sleep(2)
    out = subprocess.run([jcmd, str(pid), "GC.heap_info"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"used (\d+)K", out)
    r = re.search(r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)", out)
    global LAST_HEAP_RANGE
    LAST_HEAP_RANGE = (int(r.group(1), 16), int(r.group(2), 16)) if r else None
    return rss_kib(pid), int(m.group(1)) if m else None


LAST_HEAP_RANGE = None


def rss_split(pid):
    """Resident KiB by kind of mapping (/proc/PID/smaps): the Java heap (its reserved range: committed pages count only
    once touched, so it grows as the GC first uses them), glibc's main heap ([heap]), other anonymous memory (malloc's
    thread arenas, thread stacks, the JVM's own), and files (the jar, libraries, the mmapped model)."""
    out = {"java_heap": 0, "brk_heap": 0, "anon_other": 0, "file": 0}
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                lo = int(head[0].split("-")[0], 16)
                name = head[5] if len(head) > 5 else ""
                if LAST_HEAP_RANGE and LAST_HEAP_RANGE[0] <= lo < LAST_HEAP_RANGE[1]:
                    kind = "java_heap"
                elif name == "[heap]":
                    kind = "brk_heap"
                elif name == "" or name.startswith("["):
                    kind = "anon_other"
                else:
                    kind = "file"
            elif head and head[0] == "Rss:":
                out[kind] += int(head[1])
    return out


def native_memory(jcmd, pid):
    """Committed KiB by category, with -XX:NativeMemoryTracking=summary (else empty): where RSS goes."""
    out = subprocess.run([jcmd, str(pid), "VM.native_memory", "summary"], capture_output=True, text=True).stdout
    return {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"-\s+([A-Za-z ]+?) \(reserved=\d+KB, committed=(\d+)KB", out)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--streams", type=int, default=64)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--ctx-size", type=int, default=8192)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--session-ttl", type=int, default=60)
    p.add_argument("--warmup", type=float, default=20, help="seconds of load before the first measurement")
    p.add_argument("--steer-jar", default="server/target/steer-server.jar")
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--java-opt", action="append", default=[], help="a JVM option, e.g. -XX:NativeMemoryTracking=summary")
    p.add_argument("--no-jvm-options", action="store_true", help="leave out scripts/jvm.options (what run.sh and the image launch with)")
    p.add_argument("--sample-s", type=float, default=15, help="seconds between RSS samples (from the warm-up's start)")
    p.add_argument("--out")
    a = p.parse_args()
    jcmd = os.path.join(os.path.dirname(a.java), "jcmd")
    port = free_port()
    data = subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip()
    log = open(os.path.join(data, "server.log"), "w")
    proc = subprocess.Popen([a.java, *([] if a.no_jvm_options else ["@" + JVM_OPTIONS]), "--enable-native-access=ALL-UNNAMED", *a.java_opt, "-jar", a.steer_jar, "--model", a.model,
                             "--port", str(port), "--data-dir", data, "--parallel", str(a.parallel), "--ctx-size", str(a.ctx_size),
                             "--threads", str(a.threads), "--max-queue", str(a.streams * 2), "--session-ttl", str(a.session_ttl)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if request(port, "GET", "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                sys.exit("the server exited; see " + log.name)
            time.sleep(0.2)
        samples, sampling = [], threading.Event()
        ts0 = time.time()

        def sample():
            while not sampling.wait(a.sample_s):
                try:
                    samples.append([round(time.time() - ts0), rss_kib(proc.pid)])
                except OSError:
                    return
        threading.Thread(target=sample, daemon=True).start()
        warm = Stats()
        ts = [threading.Thread(target=client, args=(port, warm, time.time() + a.warmup, 1000 + i)) for i in range(a.streams)]
        [t.start() for t in ts]; [t.join() for t in ts]
        rss0, heap0 = full_gc(jcmd, proc.pid)
        split0 = rss_split(proc.pid)
        nmt0 = native_memory(jcmd, proc.pid)

        stats = Stats()
        t0 = time.time()
        ts = [threading.Thread(target=client, args=(port, stats, t0 + a.minutes * 60, i)) for i in range(a.streams)]
        [t.start() for t in ts]; [t.join() for t in ts]
        ran = time.time() - t0

        idle_after = None
        for i in range(600):
            m = metrics(port)
            if m.get("steer_queue_depth") == 0 and m.get("steer_active_sequences") == 0:
                idle_after = i * 0.1
                break
            time.sleep(0.1)
        m = metrics(port)
        rss1, heap1 = full_gc(jcmd, proc.pid)
        split1 = rss_split(proc.pid)
        nmt1 = native_memory(jcmd, proc.pid)
        health = request(port, "GET", "/health")[0]
        # Then glibc's malloc_trim (jcmd System.trim_native_heap): what it gives back was freed but kept by the C
        # allocator (arenas), not leaked. Taken after the figures above, so they are as before.
        trim = subprocess.run([jcmd, str(proc.pid), "System.trim_native_heap"], capture_output=True, text=True).stdout.strip()
        time.sleep(1)
        rss_trimmed = rss_kib(proc.pid)
        sampling.set()
        result = {
            "model": os.path.basename(a.model), "streams": a.streams, "minutes": round(ran / 60, 2), "parallel": a.parallel,
            "ctx_size": a.ctx_size, "session_ttl_s": a.session_ttl,
            "counts": stats.counts, "errors": stats.counts.get("errors", 0), "error_samples": stats.errors,
            "warmup_errors": warm.counts.get("errors", 0),
            "ttft_ms": {"p50": percentile(stats.ttft, 50), "p95": percentile(stats.ttft, 95), "p99": percentile(stats.ttft, 99)},
            "steer_answer_ms": {"p50": percentile(stats.steer_ms, 50), "p95": percentile(stats.steer_ms, 95), "p99": percentile(stats.steer_ms, 99)},
            "rss_kib_after_full_gc": {"before": rss0, "after": rss1, "drift": round((rss1 - rss0) / rss0, 4)},
            "rss_kib_after_full_gc_then_malloc_trim": {"after": rss_trimmed, "drift_from_before": round((rss_trimmed - rss0) / rss0, 4),
                                                        "jcmd": trim.splitlines()[-1] if trim else None},
            "rss_kib_split_after_full_gc": {"before": split0, "after": split1,
                                            "change": {k: split1[k] - split0[k] for k in split1}},
            "heap_used_kib_after_full_gc": {"before": heap0, "after": heap1},
            "jvm_committed_kib_change": {k: nmt1[k] - nmt0.get(k, 0) for k in nmt1 if nmt1[k] != nmt0.get(k, 0)},
            "idle_after_s": idle_after,
            "end": {k: m.get(k) for k in ("steer_queue_depth", "steer_active_sequences", "steer_kv_cache_tokens",
                                          "steer_kv_cache_usage_ratio", "steer_sessions")},
            "health_after": health,
            "malloc_env": {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))},
            "rss_kib_samples": samples,
        }
        print(json.dumps(result, indent=2))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(result, f, indent=2)
        sys.exit(0 if result["errors"] == 0 and idle_after is not None and health == 200 else 1)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
