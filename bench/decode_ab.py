#!/usr/bin/env python3
"""Decode speed of several Steer jars (builds of libsteer, say) against each other, requests interleaved.

On a small shared machine the speed of one server moves by 10-30% from one minute to the next (bench/README.md), so
two servers measured one after the other cannot be told apart by less than that. This starts every jar at once
(each its own port; an idle server takes no CPU), then sends each round's requests to one jar after the other:
slow and fast minutes hit every jar alike. Compare the jars round by round, not only by the medians.
Greedy, ignore_eos, 128 tokens; decode_bench.py's requests. With --long-prompt N, each round also times the first
token of one N-word prompt per jar (decode_bench.py's; its first words differ every round, so no cached prefix but
the chat template's). Standard library only.

  python3 bench/decode_ab.py --model M.gguf --jars a.jar,b.jar --rounds 5 --concurrency 1 8 --out ab.json
  python3 bench/decode_ab.py --model M.gguf --jars a.jar,b.jar --rounds 5 --concurrency --long-prompt 480 --out ttft.json
"""
import argparse, json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode_bench as d  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--jars", required=True, help="comma-separated")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 8], help="none: time to first token only")
    p.add_argument("--long-prompt", type=int, default=0, help="words of a time-to-first-token prompt per round (0: none)")
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
                "--threads", str(a.threads), "--ctx-size", "8192", "--parallel", str(max(a.concurrency + [4])),
                "--data-dir", os.path.join(a.logs, "decode-ab-data-%d" % i)])
            procs.append(subprocess.Popen(cmd, stdout=open(os.path.join(a.logs, "decode-ab-%d.log" % i), "w"),
                                          stderr=subprocess.STDOUT))
            ports.append(port)
        for port, proc in zip(ports, procs):
            d.wait_healthy(port, proc)
            d.run_round(port, 1, 32, -1)
            if a.concurrency:
                d.run_round(port, max(a.concurrency), 32, -2)
            if a.long_prompt:
                d.measure_ttft(port, a.long_prompt, 1)  # warm-up of the long path (another prompt than the rounds')
        rounds = {jar: {c: [] for c in a.concurrency} for jar in jars}
        ttft = {jar: [] for jar in jars}
        for r in range(a.rounds):
            for c in a.concurrency:
                for jar, port in zip(jars, ports):
                    res = d.run_round(port, c, a.max_tokens, r)
                    rounds[jar][c].append(d.aggregate_tps(res, [len(x["stamps"]) for x in res]))
            for jar, port in zip(jars, ports) if a.long_prompt else []:
                first = [None]
                d.stream_one(port, d.long_prompt(r + 1, a.long_prompt), 4, first, 0)
                ttft[jar].append(first[0]["stamps"][0] - first[0]["start"])
        med = lambda v: sorted(v)[len(v) // 2]
        out = {"model": os.path.basename(a.model), "threads": a.threads, "max_tokens": a.max_tokens,
               "aggregate_tps_per_round": {jar: {str(c): v for c, v in rounds[jar].items()} for jar in jars},
               "median_aggregate_tps": {jar: {str(c): med(v) for c, v in rounds[jar].items()} for jar in jars}}
        if a.long_prompt:
            out.update({"long_prompt_words": a.long_prompt, "ttft_s_per_round": ttft,
                        "median_ttft_s": {jar: med(v) for jar, v in ttft.items()}})
        json.dump(out, open(a.out, "w"), indent=1)
        for jar in jars:
            print(jar, {c: [round(x, 1) for x in v] for c, v in rounds[jar].items()},
                  "ttft" if a.long_prompt else "", [round(x, 3) for x in ttft[jar]] if a.long_prompt else "")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
