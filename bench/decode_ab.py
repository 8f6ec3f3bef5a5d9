#!/usr/bin/env python3
"""Decode speed of several Steer jars (builds of libsteer, say) against each other, requests interleaved.

On a small shared machine the speed of one server moves by 10-30% from one minute to the next (bench/README.md), so
two servers measured one after the other cannot be told apart by less than that. This starts every jar at once
(each its own port; an idle server takes no CPU), then sends each round's requests to one jar after the other:
slow and fast minutes hit every jar alike. Compare the jars round by round, not only by the medians.
Greedy, ignore_eos, 128 tokens; decode_bench.py's requests. Standard library only.

  python3 bench/decode_ab.py --model M.gguf --jars a.jar,b.jar --rounds 5 --concurrency 1 8 --out ab.json
"""
import argparse, json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_bench as d  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--jars", required=True, help="comma-separated")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--logs", default="/tmp")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    jars = a.jars.split(",")
    procs, ports = [], []
    try:
        for i, jar in enumerate(jars):
            port = d.free_port()
            cmd = d.steer_command(a.java, jar, a.model, port, [
                "--threads", str(a.threads), "--ctx-size", "8192", "--parallel", str(max(a.concurrency)),
                "--data-dir", os.path.join(a.logs, "decode-ab-data-%d" % i)])
            procs.append(subprocess.Popen(cmd, stdout=open(os.path.join(a.logs, "decode-ab-%d.log" % i), "w"),
                                          stderr=subprocess.STDOUT))
            ports.append(port)
        for port, proc in zip(ports, procs):
            d.wait_healthy(port, proc)
            d.run_round(port, 1, 32, -1)
            d.run_round(port, max(a.concurrency), 32, -2)
        rounds = {jar: {c: [] for c in a.concurrency} for jar in jars}
        for r in range(a.rounds):
            for c in a.concurrency:
                for jar, port in zip(jars, ports):
                    res = d.run_round(port, c, a.max_tokens, r)
                    rounds[jar][c].append(d.aggregate_tps(res, [len(x["stamps"]) for x in res]))
        med = lambda v: sorted(v)[len(v) // 2]
        out = {"model": os.path.basename(a.model), "threads": a.threads, "max_tokens": a.max_tokens,
               "aggregate_tps_per_round": {jar: {str(c): v for c, v in rounds[jar].items()} for jar in jars},
               "median_aggregate_tps": {jar: {str(c): med(v) for c, v in rounds[jar].items()} for jar in jars}}
        json.dump(out, open(a.out, "w"), indent=1)
        for jar in jars:
            print(jar, {c: [round(x, 1) for x in v] for c, v in rounds[jar].items()})
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
