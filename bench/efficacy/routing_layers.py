"""Which representation should a router read? routing.py's nearest-neighbour rule over the mean of one layer's hidden
states of the templated prompt (ChatML with SmolLM2's default system message), for several layers: 0 is the token
embeddings alone (no forward pass at all), n_layer the last block's output. The first adapted block's input (layer 15
of SmolLM2's 30 with the default `lora_layers`) is what the adapter itself reads.

Runs in the PyTorch venv of trainer_bench.py (transformers reads the GGUF, dequantized to F32):

    ~/.cache/steer/bench-venv/bin/python bench/efficacy/routing_layers.py --gguf ~/.cache/steer/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --s9 bench/results/routing-study-smollm2-135m-s9-2026-12-06.json --out ...

Steered prompts: for families.py, those of routing.py's s9 result (the recording's steers); for families_b.py, every
train prompt. Unsteered: the same result's (replay and let-run prompts) for s9, the 32 replay prompts for b.
"""
import argparse
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import families  # noqa: E402
import families_b  # noqa: E402
from routing import REPLAY_PROMPTS, REPLAY_SIZE, frac, java_list  # noqa: E402

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--s9", required=True, help="routing.py's result on the s9 recording (its steered and unsteered prompts)")
    ap.add_argument("--layers", default="0,8,15,22,30")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    d, g = os.path.dirname(os.path.abspath(a.gguf)), os.path.basename(a.gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=g)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=g, torch_dtype=torch.float32).eval()
    replay, probes = java_list(REPLAY_PROMPTS, "REPLAY"), java_list(REPLAY_PROMPTS, "PROBES")
    cache = {}

    def means(prompt):
        if prompt not in cache:
            text = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
            with torch.no_grad():
                out = model(tok(text, return_tensors="pt").input_ids, output_hidden_states=True)
            cache[prompt] = [h[0].mean(0) for h in out.hidden_states]
        return cache[prompt]

    s9 = json.load(open(a.s9))
    sets = [("s9", families, s9["steered"], s9["unsteered"]),
            ("b", families_b, sorted({p for f in families_b.FAMILIES for p in f.train}), sorted(set(replay[:REPLAY_SIZE])))]
    out = {"bench": "routing_layers", "gguf": g, "sets": {}}
    for name, fm, steered, unsteered in sets:
        out["sets"][name] = {}
        for layer in (int(x) for x in a.layers.split(",")):
            vec = lambda p: torch.nn.functional.normalize(means(p)[layer], dim=0)  # noqa: E731
            s, u = torch.stack([vec(p) for p in steered]), torch.stack([vec(p) for p in unsteered])
            to_adapter = lambda p: bool((s @ vec(p)).max() > (u @ vec(p)).max())  # noqa: E731
            r = {"held_out_to_adapter": {f.name: frac(to_adapter(p) for p in f.heldout) for f in fm.FAMILIES},
                 "unrelated_to_base": frac(not to_adapter(p) for p in fm.UNRELATED),
                 "probes_to_base": frac(not to_adapter(p) for p in probes)}
            out["sets"][name][str(layer)] = r
            print(name, "layer", layer, json.dumps(r), flush=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
