#!/usr/bin/env python3
"""Time to first token after a steer vs a fresh request of the same total length, at ~2k tokens of context.

A steer keeps the KV cache up to the fork and decodes only the fork token and the correction; a fresh request must
prefill the whole context. Both are measured on one running Steer server, streaming, greedy:
  steer: from sending the steer to the first continuation token on the original stream
  fresh: from sending a new request (same length, different text, so nothing is cached) to its first token

  python3 bench/steer_resume_bench.py --model M.gguf --threads 2 --out bench/results/steer-resume-cpu.json
"""
import argparse, http.client, json, os, platform, random, socket, subprocess, sys, threading, time

WORDS = ("river mountain quiet lantern harbor meadow copper signal winter garden paper orbit violet thunder "
         "pocket silver canyon whisper marble compass").split()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()


def text_of(seed, n_words):
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n_words))


class Stream:
    """A streaming chat completion read on its own thread, with arrival times of content and steer chunks."""
    def __init__(self, port, body):
        self.events, self.id = [], None
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.sent = time.perf_counter()
        self.c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        self.r = self.c.getresponse()
        self.t = threading.Thread(target=self.run, daemon=True); self.t.start()

    def run(self):
        while True:
            line = self.r.readline()
            if not line or line.strip() == b"data: [DONE]":
                break
            if line.startswith(b"data: {"):
                o = json.loads(line[6:])
                self.id = o["id"]
                kind = "steer" if "steer" in o else ("content" if o["choices"] and o["choices"][0]["delta"].get("content") else "other")
                self.events.append((time.perf_counter(), kind))

    def wait_for(self, kind, count, after=0.0):
        while sum(1 for t, k in self.events if k == kind and t >= after) < count:
            time.sleep(0.001)
        return [t for t, k in self.events if k == kind and t >= after][count - 1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--steer-jar", default="server/target/steer-server.jar")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--gpu-layers", type=int, default=0)
    p.add_argument("--context-words", type=int, default=1400, help="about 2k tokens with Gemma's tokenizer")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--out")
    a = p.parse_args()

    port = free_port()
    log = open("/tmp/steer-resume-bench.log", "w")
    proc = subprocess.Popen([a.java, "--enable-native-access=ALL-UNNAMED", "-jar", a.steer_jar, "--model", a.model,
                             "--port", str(port), "--ctx-size", "8192", "--parallel", "2", "--threads", str(a.threads),
                             "-ngl", str(a.gpu_layers), "--steer-db", "/tmp/steer-resume-bench.db"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        correction = "Actually, let me restate that more carefully and briefly:"
        rows = []
        for rnd in range(a.rounds):
            ctx_text = text_of(rnd, a.context_words)
            body = {"stream": True, "temperature": 0, "ignore_eos": True, "max_tokens": 100000,
                    "messages": [{"role": "user", "content": "Summarize: " + ctx_text}]}
            s = Stream(port, body)
            s.wait_for("content", 8)
            t0 = time.perf_counter()
            status, data = post(port, "/v1/chat/completions/%s/steer" % s.id, {"at": 4, "text": correction, "max_tokens": 4})
            assert status == 200, data
            ack = json.loads(data)
            t_first = s.wait_for("content", 1, after=s.wait_for("steer", 1))
            steer_ttft = t_first - t0
            s.t.join()

            # fresh: a prompt of the same total length (context + kept output + correction), with other text
            fresh_text = text_of(1000 + rnd, a.context_words)
            f = Stream(port, {"stream": True, "temperature": 0, "ignore_eos": True, "max_tokens": 4,
                              "messages": [{"role": "user", "content": "Summarize: " + fresh_text},
                                           {"role": "assistant", "content": ack["accepted"] + ack["correction"]}]})
            fresh_ttft = f.wait_for("content", 1) - f.sent
            f.t.join()
            rows.append({"steer_ttft_s": steer_ttft, "fresh_ttft_s": fresh_ttft, "ratio": steer_ttft / fresh_ttft})
            print("round %d: steer %.3fs fresh %.3fs ratio %.4f" % (rnd, steer_ttft, fresh_ttft, steer_ttft / fresh_ttft), file=sys.stderr)
        metrics = http.client.HTTPConnection("127.0.0.1", port); metrics.request("GET", "/metrics")
        m = metrics.getresponse().read().decode()
        med = lambda k: sorted(x[k] for x in rows)[len(rows) // 2]
        result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                  "model": os.path.basename(a.model), "threads": a.threads, "gpu_layers": a.gpu_layers,
                  "context_words": a.context_words, "correction": correction, "rounds": rows,
                  "median_steer_ttft_s": med("steer_ttft_s"), "median_fresh_ttft_s": med("fresh_ttft_s"),
                  "median_ratio": med("ratio"), "target_ratio": 0.1,
                  "metrics": [l for l in m.splitlines() if l.startswith("steer_prompt_tokens")]}
        text = json.dumps(result, indent=2)
        print(text)
        if a.out:
            os.makedirs(os.path.dirname(a.out), exist_ok=True)
            open(a.out, "w").write(text + "\n")
    finally:
        proc.terminate(); proc.wait(30)


if __name__ == "__main__":
    main()
