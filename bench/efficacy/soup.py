"""The average of several LoRA adapters of one base model, as one adapter: the exact mean of their weight updates.

An adapter adds (alpha / r) B A to each adapted weight. k adapters of rank r, their A matrices stacked along the rank
and their B matrices side by side, make one adapter of rank k r that adds (alpha / (k r)) [B1 .. Bk] [A1; ..; Ak] =
(1/k) sum_i (alpha / r) Bi Ai: the mean of the k updates, with alpha unchanged. Used to ask whether the spread of a
job's results over seeds is noise around a good adapter (the average would then beat most seeds) or each seed's own
answer to the same data (the average would land at their mean). All adapters must adapt the same tensors with the
same rank and alpha, as jobs of one configuration do.

    ~/.cache/steer/bench-venv/bin/python bench/efficacy/soup.py OUT.gguf v34.gguf v35.gguf v36.gguf v37.gguf v38.gguf

Needs numpy and gguf (the bench venv of bench/README.md). To serve the result without a registry row of its own,
write it over a spare version's file in a *copy* of a data dir (as floor.py does).
"""
import argparse

import gguf
import numpy as np


def field(reader, key):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return str(bytes(f.parts[-1]), "utf-8")
    return f.parts[-1][0].item()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("adapters", nargs="+")
    a = p.parse_args()
    readers = [gguf.GGUFReader(path) for path in a.adapters]
    first = readers[0]
    alpha = field(first, "adapter.lora.alpha")
    layout = [(t.name, tuple(int(x) for x in t.shape)) for t in first.tensors]
    names = [name for name, _ in layout]
    for path, r in zip(a.adapters, readers):
        # Another rank would be scaled by alpha / (the summed ranks): not the mean.
        if field(r, "adapter.lora.alpha") != alpha or [(t.name, tuple(int(x) for x in t.shape)) for t in r.tensors] != layout:
            raise SystemExit(f"{path} adapts other tensors, with another rank or alpha, than {a.adapters[0]}")
    w = gguf.GGUFWriter(a.out, arch=field(first, "general.architecture"))
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(alpha))
    for i, name in enumerate(names):
        parts = [np.array(r.tensors[i].data, dtype=np.float32).reshape([int(x) for x in reversed(r.tensors[i].shape)])
                 for r in readers]
        # lora_a is [rank, n_in] (rows: rank), lora_b is [n_out, rank] (columns: rank), as numpy sees them.
        w.add_tensor(name, np.concatenate(parts, axis=0 if name.endswith(".lora_a") else 1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
