"""Time to the first token of a new request sent DELAY s after a steered answer's stream ended, when the server's
background preparation for its next job (train/JobPreparation) wakes and computes that answer's base-model side.

    python3 bench/prep_ttft.py http://127.0.0.1:8080 20 0.5

N rounds: a greedy answer (24 tokens) on the base model, a steer at its third token that continues 24 tokens, DELAY
seconds, then a new streamed request whose first token is timed. Prints median, p90 and max in ms. Run it against a
server started with steers stored (the preparation's first pass done) and against the jar before the change.
"""
import json, sys, time, urllib.request, statistics
URL = sys.argv[1]; N = int(sys.argv[2]); DELAY = float(sys.argv[3])
M = sys.argv[4] if len(sys.argv) > 4 else "SmolLM2-135M-Instruct.Q4_1@base"  # the base model, pinned
def post(path, body, stream=False):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=120)
def ttft(prompt):
    t0 = time.time(); first = None
    with post("/v1/chat/completions", {"model": M, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "temperature": 0, "stream": True}) as r:
        for line in r:
            if line.startswith(b"data: ") and b'"content"' in line and first is None:
                first = time.time() - t0
    return first
out = []
for i in range(N):
    with post("/v1/chat/completions", {"model": M, "messages": [{"role": "user", "content": f"Tell me one fact about the number {i + 17}."}], "max_tokens": 24, "temperature": 0}) as r:
        cid = json.load(r)["id"]
    with post(f"/v1/chat/completions/{cid}/steer", {"at": 3, "text": " Here is a short, friendly fact:", "max_tokens": 24}) as r:
        r.read()
    time.sleep(DELAY)
    out.append(ttft(f"Name a color that starts with the letter {chr(65 + i % 26)} and say why {i}."))
    time.sleep(2.0)
print(json.dumps({"n": N, "delay": DELAY, "median_ms": round(1000 * statistics.median(out), 1), "p90_ms": round(1000 * sorted(out)[int(0.9 * N) - 1], 1), "max_ms": round(1000 * max(out), 1)}))
