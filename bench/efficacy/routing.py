"""Would routing help? An offline study for issue 11: serve an adapter only to the prompts that look like the ones the
person steered, the base model to the rest, and recompute efficacy.py's metrics from answers already measured.

Why: any adapter changes about a fifth of the unrelated greedy answers in their first 40 characters on
SmolLM2-135M-Instruct, near-ties flipping under the smallest perturbation (floor.py), so ">= 90% unchanged" cannot be
met by an adapter that serves every prompt. Serving is deterministic (the base answers a prompt the same alone or
beside others), so a prompt routed to the base gets exactly the base's measured answer, and an efficacy result holds
everything needed to score a router without serving anything again.

The router (nothing here is in Steer yet): each prompt's embedding is the base model's mean-pooled last hidden state
of the user's message (llama-server from the same GGUF, `--embeddings --pooling mean`); a prompt is routed to the
adapter when its nearest steered prompt (cosine) is nearer than its nearest unsteered one, minus a margin that leans
towards the adapter. Steered prompts: the user messages of the recording's steers with the tag (--data-dir, --tag),
or, for a result without its data dir, every train prompt of the families (an approximation: the person steered most
of them). Unsteered: the job's replay prompts (the first 32 of train/ReplayPrompts.REPLAY) and the prompts of the
answers the person let run (from the data dir). A lexical router (TF-IDF over the same prompts, nearest neighbour)
is scored beside it.

    llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf --port 18400 --embeddings --pooling mean -t 2 --no-repack
    python3 bench/efficacy/routing.py --embed-url http://127.0.0.1:18400 --data-dir <s9 data dir> --tag s9 \\
        --results bench/results/efficacy-...-s9-....json --run-tag s9 --models v8,v9,v10 --out ...
"""
import argparse
import collections
import importlib.util
import json
import math
import os
import re
import sqlite3
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import efficacy  # noqa: E402  (changed(), degenerate(): the metrics exactly as efficacy.py computes them)

REPLAY_PROMPTS = os.path.join(HERE, "..", "..", "server", "src", "main", "java", "dev", "steer", "train", "ReplayPrompts.java")
REPLAY_SIZE = 32  # a default job's replay set: Hyperparameters.DEFAULT_REPLAY


def java_list(path, name):
    """The string literals of `static final List<String> NAME = List.of(...)` in a Java file."""
    s = open(path).read()
    block = s[s.index(name + " = List.of("):]
    block = block[:block.index(");")]
    return [json.loads('"' + x + '"') for x in re.findall(r'"((?:[^"\\]|\\.)*)"', block)]


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def embed(url, texts):
    out = []
    for i in range(0, len(texts), 16):
        d = post(url + "/v1/embeddings", {"input": texts[i:i + 16]})
        for x in sorted(d["data"], key=lambda x: x["index"]):
            v = x["embedding"]
            n = math.sqrt(sum(a * a for a in v))
            out.append([a / n for a in v])
    return out


def recorded_prompts(url, data_dir, tag):
    """The user messages of the steers with `tag`, and of the answers the base model wrote that the person let run."""
    db = sqlite3.connect(os.path.join(data_dir, "steers.db"))
    steered = set()
    for (request,) in db.execute("SELECT request_json FROM steers JOIN session_requests USING (session_id)"
                                 " JOIN steer_tags ON steer_tags.steer_id = steers.id WHERE tag = ?", (tag,)):
        steered.add([m["content"] for m in json.loads(request)["messages"] if m["role"] == "user"][-1])
    let_run = set()
    for (tokens,) in db.execute("SELECT prompt_tokens FROM accepted_answers WHERE adapter_version IS NULL"):
        ids = json.loads(tokens) if tokens.startswith("[") else [int(x) for x in tokens.split(",")]
        text = post(url + "/detokenize", {"tokens": ids})["content"]
        users = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", text, re.S)  # ChatML (SmolLM2)
        if users:
            let_run.add(users[-1])
    return sorted(steered), sorted(let_run)


class Router:
    """Nearest neighbour: to the adapter when the nearest steered prompt is nearer than the nearest unsteered one - margin."""

    def __init__(self, similarity, steered, unsteered, margin=0.0):
        self.similarity, self.steered, self.unsteered, self.margin = similarity, steered, unsteered, margin

    def scores(self, p):
        return (max(self.similarity(p, q) for q in self.steered), max(self.similarity(p, q) for q in self.unsteered))

    def to_adapter(self, p):
        s, u = self.scores(p)
        return s > u - self.margin


def lexical(docs):
    words = lambda s: re.findall(r"[a-z']+", s.lower())  # noqa: E731
    df = collections.Counter(w for d in docs for w in set(words(d)))
    cache = {}

    def vec(s):
        if s not in cache:
            c = collections.Counter(words(s))
            v = {w: n * math.log((1 + len(docs)) / (1 + df.get(w, 0))) for w, n in c.items()}
            norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
            cache[s] = {w: x / norm for w, x in v.items()}
        return cache[s]
    return lambda a, b: sum(x * vec(b).get(w, 0.0) for w, x in vec(a).items())


def frac(xs):
    xs = list(xs)
    return round(sum(1 for x in xs if x) / len(xs), 3) if xs else 0.0


def routed_metrics(fams, ev, model, to_adapter):
    """efficacy.py's metrics of `model` if each prompt the router sends to the base got the base's answer instead."""
    base, e = ev["base"], ev[model]
    base_unrel = {r["prompt"]: r for r in base["unrelated"]}
    rows = {}
    for name, fe in e["families"].items():
        b = {r["prompt"]: r for r in base["families"][name]["answers"]}
        rows[name] = [r if to_adapter(r["prompt"]) else b[r["prompt"]] for r in fe["answers"]]
    unrel = [r if to_adapter(r["prompt"]) else base_unrel[r["prompt"]] for r in e["unrelated"]]
    compliance = {n: frac(r["violation"] is None and not r["degenerate"] for r in rs) for n, rs in rows.items()}
    leakage = {n: frac(fams[n].shows_marker(r["text"]) for r in unrel + [x for g, rs in rows.items() if g != n for x in rs])
               for n in rows}
    diffs = [efficacy.changed(base_unrel[r["prompt"]], r) for r in unrel]
    ties = all(r.get("logprobs") for r in unrel) and all(base_unrel[r["prompt"]].get("logprobs") for r in unrel)
    everything = [x for rs in rows.values() for x in rs] + unrel
    return {"compliance": compliance, "mean_compliance": round(sum(compliance.values()) / len(compliance), 3),
            "leakage_max": max(leakage.values()), "unrelated_changed": frac(d[0] for d in diffs),
            "unrelated_changed_beyond_ties": frac(d[1] for d in diffs) if ties else None,
            "degenerate": frac(efficacy.degenerate(r["text"]) for r in everything)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embed-url", required=True)
    ap.add_argument("--families-file", default=os.path.join(HERE, "families.py"))
    ap.add_argument("--data-dir", help="the recording's data dir; without it every train prompt counts as steered")
    ap.add_argument("--tag")
    ap.add_argument("--results", help="an efficacy.py result whose answers are rescored")
    ap.add_argument("--run-tag")
    ap.add_argument("--models", default="")
    ap.add_argument("--margins", default="0,0.02,0.05")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    spec = importlib.util.spec_from_file_location("fams", a.families_file)
    fm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fm)
    fams = {f.name: f for f in fm.FAMILIES}
    replay, probes, watch = (java_list(REPLAY_PROMPTS, n) for n in ("REPLAY", "PROBES", "WATCH"))
    if a.data_dir:
        steered, let_run = recorded_prompts(a.embed_url, a.data_dir, a.tag)
    else:
        steered, let_run = sorted({p for f in fm.FAMILIES for p in f.train}), []
    unsteered = sorted(set(replay[:REPLAY_SIZE]) | set(let_run))
    heldout = {f.name: list(f.heldout) for f in fm.FAMILIES}
    prompts = list(dict.fromkeys(steered + unsteered + [p for ps in heldout.values() for p in ps] + list(fm.UNRELATED)
                                 + probes + watch))
    vectors = dict(zip(prompts, embed(a.embed_url, prompts)))
    cosine = lambda p, q: sum(x * y for x, y in zip(vectors[p], vectors[q]))  # noqa: E731

    routers = {f"embedding, margin {m}": Router(cosine, steered, unsteered, float(m)) for m in a.margins.split(",")}
    routers["lexical"] = Router(lexical(steered + unsteered), steered, unsteered)
    ev = json.load(open(a.results))["eval"][a.run_tag] if a.results else None
    out = {"bench": "routing", "families_file": os.path.basename(a.families_file), "data_dir": a.data_dir, "tag": a.tag,
           "results": a.results and os.path.basename(a.results), "steered": steered, "unsteered": unsteered, "routers": {}}
    if ev:
        out["served_everywhere"] = {m: routed_metrics(fams, ev, m, lambda p: True) for m in a.models.split(",") if m}
    for name, r in routers.items():
        entry = {"held_out_to_adapter": {f: frac(r.to_adapter(p) for p in ps) for f, ps in heldout.items()},
                 "unrelated_to_base": frac(not r.to_adapter(p) for p in fm.UNRELATED),
                 "probes_to_base": frac(not r.to_adapter(p) for p in probes),
                 "watch_to_base": frac(not r.to_adapter(p) for p in watch),
                 "held_out_to_base": [p for ps in heldout.values() for p in ps if not r.to_adapter(p)],
                 "others_to_adapter": [p for p in list(fm.UNRELATED) + probes + watch if r.to_adapter(p)]}
        if ev:
            entry["metrics"] = {m: routed_metrics(fams, ev, m, r.to_adapter) for m in a.models.split(",") if m}
        out["routers"][name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if k != "metrics"}), file=sys.stderr)
        for m, x in entry.get("metrics", {}).items():
            print(f"  {m}: {json.dumps(x)}", file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
