#!/usr/bin/env python3
"""One jar against itself with one environment variable set (a kernel switched off, e.g. STEER_NO_AVX512_FATTN=1):
two Steer servers up side by side, --concurrency streams at once (1 by default), greedy, ignore_eos, --tokens tokens,
rounds alternating (A B, B A, ...), 0.5 s between turns. Prints decode tokens/s of each, per stream for one stream
(tokens after the first / time after the first), else aggregate (decode_bench's: the tokens after each stream's first
over the decode phase), and the ratio of the medians (without the variable over with it). Source
scripts/java-home.sh first.

    python3 bench/env_ab.py --model M.gguf --jar server/target/steer-server.jar --env STEER_NO_AVX512_FATTN=1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_bench as db  # noqa: E402  (its server start, health check and streaming client)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--jar", required=True)
    p.add_argument("--env", required=True, help="NAME=VALUE set for the second server only")
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--out")
    a = p.parse_args()
    name, value = a.env.split("=", 1)
    servers = {}
    for label, extra in (("without", {}), ("with", {name: value})):
        port = db.free_port()
        env = {k: v for k, v in os.environ.items() if k != name}
        env.update(extra)
        cmd = db.steer_command("java", a.jar, a.model, port, ["--threads", str(a.threads), "--parallel", str(a.concurrency)])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers[label] = (port, proc)
    try:
        for port, proc in servers.values():
            db.wait_healthy(port, proc)
            db.stream_one(port, "warm up", 64, [None], 0)
        speeds = {label: [] for label in servers}
        for r in range(a.rounds):
            for label in (("without", "with") if r % 2 == 0 else ("with", "without")):
                time.sleep(0.5)
                if a.concurrency == 1:
                    out = [None]
                    db.stream_one(servers[label][0], "Story %d: once upon a time, in a small town by the sea," % r, a.tokens, out, 0)
                    s = out[0]["stamps"]
                    speeds[label].append((len(s) - 1) / (s[-1] - s[0]))
                else:
                    res = db.run_round(servers[label][0], a.concurrency, a.tokens, r)
                    speeds[label].append(db.aggregate_tps(res, [x["usage"]["completion_tokens"] if x["usage"] else len(x["stamps"]) for x in res]))
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait()
    res = {"model": os.path.basename(a.model), "env": a.env, "tokens": a.tokens, "rounds": a.rounds, "concurrency": a.concurrency,
           **{label: {"median_tps": statistics.median(v), "rounds_tps": [round(x, 1) for x in v]} for label, v in speeds.items()}}
    res["without_over_with"] = res["without"]["median_tps"] / res["with"]["median_tps"]
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
