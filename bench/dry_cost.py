"""What the adapters' default DRY penalty costs in decode (docs/training.md, "Serving"): one chat completion of 128
tokens (`ignore_eos`, greedy) from the active adapter, by default (DRY on) and with `"dry_multiplier": 0` (DRY off:
the greedy fast path), alternating, four rounds. Needs a server whose plain model name an adapter serves for the
prompt (e.g. a data dir of bench/efficacy's s9 with v3 activated).

    python3 bench/dry_cost.py http://127.0.0.1:18300 SmolLM2-135M-Instruct.Q4_1
"""
import json
import sys
import time
import urllib.request


def ask(url, model, extra):
    body = {"model": model, "messages": [{"role": "user", "content": "Who are you, exactly?"}], "temperature": 0,
            "max_tokens": 128, "ignore_eos": True, "store": False, **extra}
    t = time.time()
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    r = json.load(urllib.request.urlopen(req, timeout=120))
    return time.time() - t, r["model"], r["usage"]["completion_tokens"]


def main():
    url, model = sys.argv[1], sys.argv[2]
    for rnd in range(4):
        for name, extra in [("default (DRY)", {}), ("dry_multiplier 0", {"dry_multiplier": 0})]:
            dt, served, n = ask(url, model, extra)
            print(f"round {rnd}  {name:18} {served}  {n} tokens  {dt:.3f} s  {n / dt:.1f} tokens/s")


if __name__ == "__main__":
    main()
