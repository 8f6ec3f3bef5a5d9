#!/usr/bin/env python3
"""Steer-to-serving latency: N recorded steers, then one fine-tuning job, timed from the job's creation to the
moment its adapter serves.

The server runs from the packaged jar on a fresh data directory. The steers are made the way a person makes them:
a streamed answer (8 tokens, greedy), then a steer at its start with a short correction; all corrections teach one
habit (an opening phrase), so held-out steers can improve. The job trains sft+dpo for one epoch; the gate's drift
bound is lifted (--max-drift) so that the adapter activates and the latency to serving is measured end to end.

  python3 bench/steer_to_serving_bench.py --model M.gguf --steers 100 --threads 2 --out bench/results/steer-to-serving-cpu.json
"""
import argparse, http.client, json, os, platform, shutil, socket, subprocess, sys, tempfile, time

QUESTIONS = ["What is the capital of {}?", "Name a famous food from {}.", "What language is spoken in {}?",
             "Describe the weather in {}.", "What is a river in {}?"]
PLACES = ["France", "Japan", "Peru", "Kenya", "Norway", "Chile", "Egypt", "India", "Canada", "Italy",
          "Spain", "Ghana", "Nepal", "Cuba", "Fiji", "Iran", "Laos", "Mali", "Oman", "Chad"]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    c.request(method, path, None if body is None else json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
    return data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--steer-jar", default="server/target/steer-server.jar")
    p.add_argument("--steers", type=int, default=100)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--train-threads", type=int, default=os.cpu_count())
    p.add_argument("--gpu-layers", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-drift", type=float, default=100.0)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lora-layers", help="the job's lora_layers (the server's default when not given)")
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--out")
    a = p.parse_args()

    data = tempfile.mkdtemp(prefix="steer-to-serving-")
    port = free_port()
    log = open(os.path.join(data, "server.log"), "w")
    proc = subprocess.Popen([a.java, "--enable-native-access=ALL-UNNAMED", "-jar", a.steer_jar, "--model", a.model,
                             "--port", str(port), "--ctx-size", "4096", "--parallel", "2", "--threads", str(a.threads),
                             "--train-threads", str(a.train_threads), "-ngl", str(a.gpu_layers), "--data-dir", data],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                request(port, "GET", "/health"); break
            except Exception:
                time.sleep(0.2)
        t_steers = time.perf_counter()
        for i in range(a.steers):
            q = QUESTIONS[i % len(QUESTIONS)].format(PLACES[(i // len(QUESTIONS)) % len(PLACES)])
            body = request(port, "POST", "/v1/chat/completions", {"stream": True, "temperature": 0, "max_tokens": 8,
                                                                  "messages": [{"role": "user", "content": q}]})
            first = next(l for l in body.decode().splitlines() if l.startswith("data: {"))
            cid = json.loads(first[6:])["id"]
            request(port, "POST", f"/v1/chat/completions/{cid}/steer",
                    {"at": 0, "text": f"Ahoy! Here be the answer about {PLACES[(i // len(QUESTIONS)) % len(PLACES)]}.", "max_tokens": 1})
        steering_s = time.perf_counter() - t_steers

        t0 = time.perf_counter()
        job = json.loads(request(port, "POST", "/v1/fine_tuning/jobs", {
            "method": "sft+dpo", "hyperparameters": {"n_epochs": a.epochs, "batch_size": a.batch_size,
                                                      "learning_rate": a.learning_rate,
                                                      **({"lora_layers": int(a.lora_layers)} if a.lora_layers else {})},
            "eval": {"max_drift": a.max_drift}}))
        while True:
            j = json.loads(request(port, "GET", f"/v1/fine_tuning/jobs/{job['id']}"))
            if j["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        active = json.loads(request(port, "GET", "/v1/adapters"))["active"]
        latency = time.perf_counter() - t0
        served = json.loads(request(port, "POST", "/v1/chat/completions", {
            "temperature": 0, "max_tokens": 12, "messages": [{"role": "user", "content": "What is the capital of Spain?"}]}))
        result = {
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "model": os.path.basename(a.model), "steers": a.steers, "threads": a.threads, "train_threads": a.train_threads,
            "gpu_layers": a.gpu_layers, "batch_size": a.batch_size, "epochs": a.epochs, "learning_rate": a.learning_rate,
            "method": "sft+dpo",
            "recording_steers_s": round(steering_s, 1),
            "job_status": j["status"], "active_after": active,
            "steer_to_serving_s": round(latency, 1),
            "steps": j.get("total_steps"), "tokens_per_second": j.get("tokens_per_second"),
            "lora_layers": (j.get("hyperparameters") or {}).get("lora_layers"),
            "eval": j.get("eval"), "error": j.get("error"),
            "served_answer": served["choices"][0]["message"]["content"], "served_model": served["model"],
        }
        print(json.dumps(result, indent=2))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
