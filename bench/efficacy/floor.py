"""The floor of "unrelated answers unchanged (first 40 characters)": how many greedy answers any adapter changes.

Issue 11 asks that an adapter leave >= 90% of unrelated greedy answers unchanged in their first 40 characters. This
measures what that comparison says before anything is learned: the same server answers the unrelated prompts of
families.py and families_b.py (greedy, 96 tokens, one request at a time) with

  - the base model, twice, and once more while three other greedy streams share its decode steps (batch invariance);
  - variants of one trained adapter, written under spare version numbers of a *copy* of a data dir: its LoRA B
    scaled by 0 (an adapter that adds exactly nothing), replaced by random N(0, sigma) entries (an adapter that adds
    almost nothing: sigma 1e-6, 1e-4), and scaled by 0.01, 0.1, 0.3; and the adapter itself.

and counts the answers whose first 40 characters differ from the base's. The data dir given is copied and never
written; its adapters' registry rows are reused (the registry keeps no hash of an adapter's file), so the spare
versions must not be the adapter measured.

    ~/.cache/steer/bench-venv/bin/python bench/efficacy/floor.py --jar server/target/steer-server.jar \\
      --model ~/.cache/steer/models/SmolLM2-135M-Instruct.Q4_1.gguf --data-dir /tmp/exp4-data --adapter v4 \\
      --spare v17,v18,v19,v20,v21,v22,v23 --out bench/results/efficacy-cpu-smollm2-135m-floor-2026-12-05.json

Needs numpy and gguf (the bench venv of bench/README.md has both) and a JDK 21 `java` (source scripts/java-home.sh).
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import efficacy  # noqa: E402  (the prompt sets' loader)
CHARS = 40
MAX_TOKENS = 96


def unrelated_prompts():
    prompts = []
    for name in ("families.py", "families_b.py"):
        prompts += efficacy.load_families(os.path.join(HERE, name)).UNRELATED
    return list(dict.fromkeys(prompts))


def write_variant(src, dst, mode, value, seed=0):
    """A copy of adapter `src` whose LoRA B tensors are scaled by `value` (mode "scale") or drawn from
    N(0, value) (mode "random"); LoRA A and the metadata are kept."""
    r = gguf.GGUFReader(src)
    arch = str(bytes(r.fields["general.architecture"].parts[-1]), "utf-8")
    w = gguf.GGUFWriter(dst, arch=arch)
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.STRING:
            w.add_string(key, str(bytes(field.parts[-1]), "utf-8"))
        elif kind == gguf.GGUFValueType.FLOAT32:
            w.add_float32(key, float(field.parts[-1][0]))
        elif kind == gguf.GGUFValueType.UINT32:
            w.add_uint32(key, int(field.parts[-1][0]))
        else:
            raise SystemExit(f"{src}: field {key} of type {kind} is not copied by this script")
    rng = np.random.default_rng(seed)
    for t in r.tensors:
        data = np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        if t.name.endswith(".lora_b"):
            data = data * value if mode == "scale" else rng.normal(0.0, value, data.shape).astype(np.float32)
        w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(url, model, prompt, max_tokens=MAX_TOKENS):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": max_tokens, "store": False}
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.load(resp)["choices"][0]["message"]["content"] or ""


def answers(url, model, prompts, load_streams=0):
    """Greedy answers, one request at a time; with load_streams, that many other greedy streams run meanwhile."""
    done = threading.Event()

    def background(i):
        k = 0
        while not done.is_set():
            ask(url, model, f"Write a long story about a dragon, number {i}-{k}.", 200)
            k += 1

    threads = [threading.Thread(target=background, args=(i,), daemon=True) for i in range(load_streams)]
    for t in threads:
        t.start()
    if threads:
        time.sleep(3)  # let them start decoding
    try:
        return [ask(url, model, p) for p in prompts]
    finally:
        done.set()
        for t in threads:
            t.join(timeout=300)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jar", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True, help="a Steer data dir with the adapter and the spare versions")
    p.add_argument("--adapter", required=True, help="the trained adapter to vary, e.g. v4")
    p.add_argument("--spare", required=True, help="seven versions of that data dir to overwrite in the copy")
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    variants = [("B x 0", "scale", 0.0), ("B ~ N(0, 1e-6)", "random", 1e-6), ("B ~ N(0, 1e-4)", "random", 1e-4),
                ("B x 0.01", "scale", 0.01), ("B x 0.1", "scale", 0.1), ("B x 0.3", "scale", 0.3)]
    spare = a.spare.split(",")
    if len(spare) < len(variants) or a.adapter in spare:
        raise SystemExit(f"--spare needs {len(variants)} versions other than {a.adapter}")
    work = tempfile.mkdtemp(prefix="steer-floor-")
    data = os.path.join(work, "data")
    shutil.copytree(a.data_dir, data)
    src = os.path.join(a.data_dir, "adapters", a.adapter + ".gguf")
    plan = [("base again", "base", 0)]
    plan.append(("base, 3 other streams decoding", "base", 3))
    for (label, mode, value), version in zip(variants, spare):
        write_variant(src, os.path.join(data, "adapters", version + ".gguf"), mode, value)
        plan.append((f"{a.adapter}: {label}", version, 0))
    plan.append((f"{a.adapter} itself", a.adapter, 0))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    jvm_options = "@" + os.path.join(HERE, "..", "..", "scripts", "jvm.options")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([a.java, jvm_options, "-jar", a.jar, "--model", a.model, "--port", str(port),
                               "--data-dir", data, "--parallel", "4", "--threads", str(a.threads)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit(f"the server did not start; see {log.name}")
        base_id = next(m["id"] for m in json.load(urllib.request.urlopen(url + "/v1/models"))["data"] if "@" not in m["id"])
        prompts = unrelated_prompts()
        base = answers(url, base_id + "@base", prompts)
        rows = []
        for label, version, load in plan:
            this = answers(url, f"{base_id}@{version}", prompts, load)
            diff = [i for i, (x, y) in enumerate(zip(base, this)) if x[:CHARS] != y[:CHARS]]
            rows.append({"label": label, "version": version, "changed": len(diff), "of": len(prompts),
                         "examples": [{"prompt": prompts[i], "base": base[i][:80], "this": this[i][:80]}
                                      for i in diff[:4]]})
            print(f"{label}: {len(diff)} of {len(prompts)} changed in their first {CHARS} characters", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    result = {"bench": "efficacy-floor", "model": os.path.basename(a.model), "jar": os.path.basename(a.jar),
              "adapter": a.adapter,
              "adapter_sha256": hashlib.sha256(open(src, "rb").read()).hexdigest(), "prompts": len(prompts), "chars": CHARS, "max_tokens": MAX_TOKENS,
              "threads": a.threads, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
