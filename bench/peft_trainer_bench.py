#!/usr/bin/env python3
"""The PyTorch + PEFT half of trainer_bench.py: LoRA training throughput and peak memory on a model of the same shape.

The shape (layers, widths, heads, vocabulary, sliding window) is read from the GGUF file Steer trains on (gemma3 or
llama); the weights
are random (throughput does not depend on their values) in float32, PyTorch's usual CPU training type. LoRA with the
same rank, alpha and targets as Steer's (q/k/v/o and gate/up/down), AdamW, BATCH examples of SEQ_LEN tokens with the
loss on the last SPAN tokens only (labels -100 elsewhere).

--logits all is what a stock Hugging Face training loop does (LM head on every position); --logits span computes it
only on the positions the loss needs (`logits_to_keep`), as Steer does: the stronger peer.

Prints one JSON object. Needs torch, transformers, peft and gguf (bench/README.md says how to install them).
"""
import argparse, json, resource, time

import gguf
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM


def model_of(path):
    """A randomly initialised float32 model of the GGUF file's shape: gemma3 or llama (SmolLM2)."""
    r = gguf.GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    assert arch in ("gemma3", "llama"), "gemma3 or llama GGUF files"

    def field(key):  # the architecture's own key, e.g. "block_count" -> "llama.block_count"
        f = r.fields[arch + "." + key]
        return f.parts[f.data[0]].tolist()[0]

    shape = dict(
        vocab_size=len(r.fields["tokenizer.ggml.tokens"].data),
        hidden_size=field("embedding_length"),
        intermediate_size=field("feed_forward_length"),
        num_hidden_layers=field("block_count"),
        num_attention_heads=field("attention.head_count"),
        num_key_value_heads=field("attention.head_count_kv"),
        rms_norm_eps=field("attention.layer_norm_rms_epsilon"),
        max_position_embeddings=field("context_length"),
        torch_dtype=torch.float32,
    )
    if arch == "llama":
        tied = "output.weight" not in {t.name for t in r.tensors}
        return LlamaForCausalLM(LlamaConfig(**shape, rope_theta=field("rope.freq_base"), tie_word_embeddings=tied))
    return Gemma3ForCausalLM(Gemma3TextConfig(**shape, head_dim=field("attention.key_length"),
                                              sliding_window=field("attention.sliding_window"),
                                              query_pre_attn_scalar=field("attention.key_length")))


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="the GGUF file whose shape to copy")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--span", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--logits", choices=["all", "span"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--layers", type=int, default=0, help="LoRA on the last LAYERS blocks only (0: every block)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = model_of(a.model).to(a.device)
    config = model.config
    # The last LAYERS blocks only (PEFT's layers_to_transform): autograd then stops at the first adapted block.
    n = config.num_hidden_layers
    last = list(range(n - a.layers, n)) if 0 < a.layers < n else None
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"],
                                             layers_to_transform=last))
    model.train()
    model_rss = rss_kib()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4, weight_decay=0.0)

    ids = torch.randint(1000, config.vocab_size - 1000, (a.batch, a.seq_len), device=a.device)
    labels = ids.clone()
    labels[:, : a.seq_len - a.span] = -100

    def step():
        if a.logits == "all":
            loss = model(input_ids=ids, labels=labels).loss
        else:
            logits = model(input_ids=ids, logits_to_keep=a.span + 1).logits[:, :-1]
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, -a.span:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    def sync():
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    first = step()  # warm-up
    sync()
    start = time.perf_counter()
    last = first
    for _ in range(a.steps):
        last = step()
    sync()
    seconds = time.perf_counter() - start
    out = {"engine": "pytorch+peft", "torch": torch.__version__, "logits": a.logits, "device": a.device,
           "layers": a.layers, "seq_len": a.seq_len, "span": a.span, "batch": a.batch, "steps": a.steps, "rank": a.rank,
           "threads": a.threads, "seconds_per_step": round(seconds / a.steps, 3),
           "tokens_per_second": round(a.batch * a.seq_len * a.steps / seconds, 2),
           "loss_first": round(first, 4), "loss_last": round(last, 4),
           "model_rss_mib": round(model_rss / 1024, 1),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if a.device.startswith("cuda"):
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
