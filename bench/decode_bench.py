#!/usr/bin/env python3
"""Decode throughput of Steer vs llama-server, side by side, on one model with the same settings.

Starts both servers, sends C concurrent streaming chat completions (greedy, ignore_eos, max_tokens N), and measures
decode speed from the streamed tokens: per stream (tokens after the first / time after the first token), in
aggregate (all tokens after each stream's first / wall time of the decode phase), and the round's throughput (all
tokens / from the requests' start to the last token: a server that starts one stream early, its prompt alone, and the
others a prefill later has a longer decode phase than one that starts all together, while the round ends no later);
then the time to the first token of one stream whose prompt is about --long-prompt tokens (a different start each
round, so no server can reuse a cached prefix). Rounds alternate between the servers (llama-server first in even rounds, Steer first in odd ones; the idle
one waits, --settle seconds between turns): this machine's speed drifts by 10-20% within minutes, which a run of one
server after the other turned into ratios that moved by as much (--sequential: the old order, one server after the
other, each alone). Standard library only.

  python3 bench/decode_bench.py --model M.gguf --steer-jar server/target/steer-server.jar \
      --llama-server PATH/llama-server --threads 2 --out bench/results/decode-cpu.json
"""
import argparse, http.client, json, os, platform, socket, subprocess, sys, threading, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_healthy(port, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become healthy")


WORDS = ("river mountain window garden teacher yellow market doctor summer quiet basket bridge candle forest "
         "letter engine island orange pencil rocket silver travel violin winter").split()


def long_prompt(round_no, n_words):
    """About one token per word on the bench models' tokenizers; its first words differ every round."""
    words = [WORDS[(i * 7 + round_no * 3) % len(WORDS)] for i in range(n_words)]
    return "Round %d. Summarize these words: %s" % (round_no, " ".join(words))


def measure_ttft(port, n_words, rounds):
    """Median time to the first streamed token for one long prompt (max_tokens 4), and its prompt tokens."""
    ttft, prompt_tokens = [], None
    for r in range(rounds):
        out = [None]
        stream_one(port, long_prompt(r, n_words), 4, out, 0)
        ttft.append(out[0]["stamps"][0] - out[0]["start"])
        prompt_tokens = (out[0]["usage"] or {}).get("prompt_tokens", prompt_tokens)
    return {"ttft_s": sorted(ttft)[len(ttft) // 2], "prompt_tokens": prompt_tokens, "rounds": rounds}


def stream_one(port, prompt, max_tokens, out, i):
    body = json.dumps({
        "model": "bench", "stream": True, "temperature": 0, "max_tokens": max_tokens, "ignore_eos": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": prompt}],
    })
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    stamps, usage = [], None
    buf = b""
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for ch in chunk.get("choices", []):
            if ch.get("delta", {}).get("content"):
                stamps.append(time.perf_counter())
    out[i] = {"start": t0, "stamps": stamps, "usage": usage}


def run_round(port, concurrency, max_tokens, round_no):
    results = [None] * concurrency
    threads = [threading.Thread(target=stream_one, args=(port, "Story %d-%d: once upon a time, in a small town by the sea," % (round_no, i),
                                                              max_tokens, results, i)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def aggregate_tps(res, tokens):
    """Tokens after each stream's first over the decode phase: from the first stream's first token to the last
    stream's last token."""
    firsts = [x["stamps"][0] for x in res]
    lasts = [x["stamps"][-1] for x in res]
    return sum(n - 1 for n in tokens) / (max(lasts) - min(firsts))


def round_tps(res, tokens):
    """Every token of the round (the first ones too) over the round's wall time: from the first request sent to the last
    stream's last token, prompts included, however a server schedules them."""
    return sum(tokens) / (max(x["stamps"][-1] for x in res) - min(x["start"] for x in res))


def steer_command(java, jar, model, port, args):
    """How the benchmarks start Steer: this repository's JVM options, the model served as "bench"."""
    jvm_options = "@" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "jvm.options")
    return [java, jvm_options, "-jar", jar, "--model", model, "--alias", "bench", "--port", str(port)] + args


def measure_round(port, concurrency, max_tokens, round_no, acc):
    """One round's per-stream speeds, aggregate, round throughput, first-token times and their spread, added to acc."""
    res = run_round(port, concurrency, max_tokens, round_no)
    tokens = [x["usage"]["completion_tokens"] if x["usage"] else len(x["stamps"]) for x in res]
    for x, n in zip(res, tokens):
        span = x["stamps"][-1] - x["stamps"][0]
        acc.setdefault("per_stream", []).append((n - 1) / span)
        acc.setdefault("ttft", []).append(x["stamps"][0] - x["start"])
    acc.setdefault("aggregate", []).append(aggregate_tps(res, tokens))
    acc.setdefault("round", []).append(round_tps(res, tokens))
    # how far apart the streams' first tokens came (0 for one stream): a server that starts the first arrival's
    # prompt alone and the others a prefill later shows it here and in the aggregate
    acc.setdefault("first_token_spread", []).append(max(x["stamps"][0] for x in res) - min(x["stamps"][0] for x in res))


def med(v):
    return sorted(v)[len(v) // 2]


def summary(acc, rounds, max_tokens):
    return {"per_stream_tps": med(acc["per_stream"]), "aggregate_tps": med(acc["aggregate"]), "round_tps": med(acc["round"]),
            "first_token_spread_s": med(acc["first_token_spread"]), "ttft_s": med(acc["ttft"]),
            "rounds": rounds, "max_tokens": max_tokens}


def measure(port, concurrency, max_tokens, rounds, pause=0.0):
    """Medians over `rounds` rounds; `pause`: seconds the server stays idle before each round (a person reading)."""
    acc = {}
    for r in range(rounds):
        time.sleep(pause)
        measure_round(port, concurrency, max_tokens, r, acc)
    return summary(acc, rounds, max_tokens)


def start_server(name, cmd, port, args):
    log = open(os.path.join(args.logs, name + ".log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port, proc)
        # warm-up: both paths (one stream, all streams) until the JIT and caches settle, and the long prompt's
        run_round(port, 1, 32, -1)
        run_round(port, max(args.concurrency), 32, -2)
        if args.long_prompt > 0:
            stream_one(port, long_prompt(-1, args.long_prompt), 4, [None], 0)
    except BaseException:
        stop_server(proc)  # not yet in the caller's list: it would be left running
        raise
    return proc


def stop_server(proc):
    proc.terminate()
    proc.wait(30)


def bench_server(name, cmd, port, args):
    """One server alone (--sequential): every measurement, then the next server."""
    proc = start_server(name, cmd, port, args)
    try:
        out = {}
        for c in args.concurrency:
            out[str(c)] = measure(port, c, args.max_tokens, args.rounds, args.pause)
            print("%-12s concurrency %d: %s" % (name, c, out[str(c)]), file=sys.stderr)
        if args.long_prompt > 0:
            out["long_prompt"] = measure_ttft(port, args.long_prompt, args.rounds)
            print("%-12s long prompt: %s" % (name, out["long_prompt"]), file=sys.stderr)
        return out
    finally:
        stop_server(proc)


def bench_interleaved(servers, args):
    """servers: [(name, cmd, port)]; both running, each round measured on one then the other, the first alternating."""
    procs = []
    try:
        for name, cmd, port in servers:
            procs.append(start_server(name, cmd, port, args))
        out = {name: {} for name, _, _ in servers}
        def turns(r):
            return servers if r % 2 == 0 else servers[::-1]
        for c in args.concurrency:
            acc = {name: {} for name, _, _ in servers}
            for r in range(args.rounds):
                for name, _, port in turns(r):
                    time.sleep(args.pause + args.settle)
                    measure_round(port, c, args.max_tokens, r, acc[name])
            for name, _, _ in servers:
                out[name][str(c)] = summary(acc[name], args.rounds, args.max_tokens)
                print("%-12s concurrency %d: %s" % (name, c, out[name][str(c)]), file=sys.stderr)
        if args.long_prompt > 0:
            ttft = {name: [] for name, _, _ in servers}
            tokens = {}
            for r in range(args.rounds):
                for name, _, port in turns(r):
                    time.sleep(args.settle)
                    o = [None]
                    stream_one(port, long_prompt(r, args.long_prompt), 4, o, 0)
                    ttft[name].append(o[0]["stamps"][0] - o[0]["start"])
                    tokens[name] = (o[0]["usage"] or {}).get("prompt_tokens", tokens.get(name))
            for name, _, _ in servers:
                out[name]["long_prompt"] = {"ttft_s": med(ttft[name]), "prompt_tokens": tokens[name], "rounds": args.rounds}
                print("%-12s long prompt: %s" % (name, out[name]["long_prompt"]), file=sys.stderr)
        return out
    finally:
        for proc in procs:
            stop_server(proc)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--steer-jar", default="server/target/steer-server.jar")
    p.add_argument("--llama-server", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--gpu-layers", type=int, default=0)
    p.add_argument("--ctx-size", type=int, default=8192)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds each server stays idle before each round (interactive use; 0: rounds back to back)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--long-prompt", type=int, default=480, help="words of the time-to-first-token prompt (0: skip)")
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--logs", default="/tmp")
    p.add_argument("--llama-server-arg", action="append", default=[],
                   help="one more argument for llama-server (repeatable; write it with =, e.g. --llama-server-arg=--no-repack, where its default build "
                        "crashes in the AMX kernels: Intel Xeon with AMX, 2026-12-05, bench/README.md)")
    p.add_argument("--sequential", action="store_true",
                   help="one server after the other, each alone (before 2026-12-06); by default rounds alternate between them")
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds between two servers' turns, so that the last one's spinning worker threads go idle")
    p.add_argument("--out")
    a = p.parse_args()

    common = ["-c", str(a.ctx_size), "-np", str(a.parallel), "-t", str(a.threads), "-ngl", str(a.gpu_layers)]
    port = free_port()
    llama_cmd = [a.llama_server, "-m", a.model, "--port", str(port), "--alias", "bench", "-tb", str(a.threads),
                 "--no-webui"] + a.llama_server_arg + common
    servers = [("llama-server", llama_cmd, port)]
    port = free_port()
    while port == servers[0][2]:  # both run at once: two ports
        port = free_port()
    servers.append(("steer", steer_command(a.java, a.steer_jar, a.model, port, common), port))
    if a.sequential:
        llama, steer = (bench_server(name, cmd, port, a) for name, cmd, port in servers)
    else:
        both = bench_interleaved(servers, a)
        llama, steer = both["llama-server"], both["steer"]
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "model": os.path.basename(a.model),
        "settings": {"llama_server_args": a.llama_server_arg, "threads": a.threads, "gpu_layers": a.gpu_layers, "ctx_size": a.ctx_size, "parallel": a.parallel,
                     "long_prompt_words": a.long_prompt,
                     "max_tokens": a.max_tokens, "rounds": a.rounds, "pause_s": a.pause, "sampling": "greedy, ignore_eos",
                     "order": "sequential" if a.sequential else "rounds alternating between the servers", "settle_s": a.settle},
        "llama_server": llama, "steer": steer,
        "ratio_steer_over_llama_server": {c: {"per_stream": steer[c]["per_stream_tps"] / llama[c]["per_stream_tps"],
                                              "aggregate": steer[c]["aggregate_tps"] / llama[c]["aggregate_tps"],
                                              "round": steer[c]["round_tps"] / llama[c]["round_tps"]}
                                          for c in steer if c != "long_prompt"},
    }
    if "long_prompt" in steer:
        result["ttft_ratio_steer_over_llama_server"] = steer["long_prompt"]["ttft_s"] / llama["long_prompt"]["ttft_s"]
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
