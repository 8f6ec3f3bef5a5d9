"""Time to the first token with routing: a running Steer server with a scoped adapter version active; new one-line
prompts sent one at a time, alternately by the plain model name (routed: the scope reads the prompt with
LayerProbe first) and by `<model>@base` (not routed), streamed, max_tokens 1; then the same prompts again (the probe's
cache). Prints the medians as JSON. docs/training.md, "Scope".

    python3 bench/routing_ttft.py --port 18300 --model SmolLM2-135M-Instruct.Q4_1
"""
import argparse
import http.client
import json
import time


def first_token(port, model, prompt):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
                       "max_tokens": 1, "temperature": 0})
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    took, served = None, None
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data: {"):
            d = json.loads(line[6:])
            served = d.get("model")
            if took is None and d["choices"] and d["choices"][0].get("delta", {}).get("content"):
                took = time.perf_counter() - t0
    c.close()
    return took, served


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=20)
    a = ap.parse_args()
    prompts = [f"In a few words, what is special about the number {n}?" for n in range(11, 11 + a.prompts)]
    out = {"bench": "routing_ttft", "model": a.model}
    for round_ in ("new", "again"):
        times = {a.model: [], a.model + "@base": []}
        served = {a.model: set(), a.model + "@base": set()}
        for i, p in enumerate(prompts):
            name = a.model if i % 2 == 0 else a.model + "@base"
            t, s = first_token(a.port, name, p)
            times[name].append(t)
            served[name].add(s)
        out[round_] = {name: {"median_ms": round(1000 * sorted(ts)[len(ts) // 2], 1), "served_by": sorted(served[name])}
                       for name, ts in times.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
