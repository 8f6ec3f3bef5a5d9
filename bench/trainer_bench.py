#!/usr/bin/env python3
"""LoRA training throughput and peak memory: Steer's trainer vs PyTorch + PEFT, same shape, rank, targets, sequence
length and batch, run one after the other on the same machine.

Steer trains on the GGUF file as served (quantized base, weights shared with a serving context); PEFT trains a
float32 model of the same shape (bench/peft_trainer_bench.py). Both run masked SFT with the loss on the last SPAN
tokens. Steer's sft+dpo (a rejected span of SPAN tokens besides) is measured too, as the jobs train it, and sft with
activation checkpointing: of every block (least memory, one more forward pass) and in two runs of blocks (about half
the activations, half a forward pass more).

  python3 bench/trainer_bench.py --model M.gguf --python ~/.cache/steer/bench-venv/bin/python --threads 2 \
      --out bench/results/trainer-cpu-gemma3-270m.json
"""
import argparse, json, os, platform, subprocess, sys


def run_json(cmd):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--steer-jar", default="server/target/steer-server.jar")
    p.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    p.add_argument("--python", default=sys.executable, help="a Python with torch, transformers, peft and gguf")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--span", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--train-threads", type=int, default=0, help="trainer threads (default: --threads)")
    p.add_argument("--gpu-layers", type=int, default=0)
    p.add_argument("--device", default="cpu", help="PyTorch device (cuda on the GPU machine)")
    p.add_argument("--layers", type=int, default=0,
                   help="LoRA on the last LAYERS blocks only, both peers (0: every block; a job's default is half)")
    p.add_argument("--attention-blocks", type=int, default=0,
                   help="also Steer sft with the attention of the lowest N adapted blocks computed again (0: not run)")
    p.add_argument("--out")
    a = p.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    shape = [str(a.seq_len), str(a.span), str(a.batch), str(a.steps), str(a.rank), str(a.threads)]
    steer = [a.java, "--enable-native-access=ALL-UNNAMED", "-cp", a.steer_jar, os.path.join(here, "TrainerBench.java"),
             a.model, *shape, str(a.gpu_layers)]
    train_threads = str(a.train_threads or a.threads)
    peft = [a.python, os.path.join(here, "peft_trainer_bench.py"), "--model", a.model, "--seq-len", str(a.seq_len),
            "--span", str(a.span), "--batch", str(a.batch), "--steps", str(a.steps), "--rank", str(a.rank),
            "--threads", str(a.threads), "--device", a.device, "--layers", str(a.layers)]
    layers = str(a.layers)
    # Each Steer run keeps the largest activations in 16 bits between the passes, as a job does (JobRunner); the
    # previous default, every activation in 32 bits, is run too ("steer_sft_32_bits").
    runs = {
        "steer_sft": run_json(steer + ["sft", train_threads, "false", layers, "elementwise+16"]),
        "steer_sft_32_bits": run_json(steer + ["sft", train_threads, "false", layers, "elementwise"]),
        "steer_sft_dpo": run_json(steer + ["sft+dpo", train_threads, "false", layers, "elementwise+16"]),
        # A job that asks for checkpointing also computes the attention's activations again (JobRunner): the same here.
        "steer_sft_recompute_attention": run_json(steer + ["sft", train_threads, "false", layers, "attention+16"]),
        "steer_sft_checkpointing": run_json(steer + ["sft", train_threads, "true", layers, "attention+16"]),
        "steer_sft_checkpointing_2": run_json(steer + ["sft", train_threads, "2", layers, "attention+16"]),
    }
    if a.attention_blocks:
        runs["steer_sft_recompute_attention_blocks"] = run_json(steer + ["sft", train_threads, "false", layers, f"attention:{a.attention_blocks}+16"])
    runs |= {
        "peft_all_logits": run_json(peft + ["--logits", "all"]),
        "peft_span_logits": run_json(peft + ["--logits", "span"]),
    }
    s = runs["steer_sft"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "model": os.path.basename(a.model),
        "settings": {"seq_len": a.seq_len, "span": a.span, "batch": a.batch, "steps": a.steps, "rank": a.rank,
                     "alpha": 2 * a.rank, "targets": "q,k,v,o,gate,up,down", "layers": a.layers or "all", "threads": a.threads,
                     "train_threads": int(train_threads), "gpu_layers": a.gpu_layers, "torch_device": a.device},
        "runs": runs,
        "ratios": {
            "steer_vs_peft_all_logits_tokens_per_second": round(s["tokens_per_second"] / runs["peft_all_logits"]["tokens_per_second"], 3),
            "steer_vs_peft_span_logits_tokens_per_second": round(s["tokens_per_second"] / runs["peft_span_logits"]["tokens_per_second"], 3),
            "steer_peak_vs_serving_memory": round(s["peak_rss_mib"] / s["serving_rss_mib"], 3),
            "steer_32_bits_vs_peft_span_logits_tokens_per_second":
                round(runs["steer_sft_32_bits"]["tokens_per_second"] / runs["peft_span_logits"]["tokens_per_second"], 3),
            "steer_32_bits_peak_vs_serving_memory": round(runs["steer_sft_32_bits"]["peak_rss_mib"] / runs["steer_sft_32_bits"]["serving_rss_mib"], 3),
            "steer_sft_dpo_peak_vs_serving_memory": round(runs["steer_sft_dpo"]["peak_rss_mib"] / runs["steer_sft_dpo"]["serving_rss_mib"], 3),
            "steer_recompute_attention_vs_peft_span_logits_tokens_per_second":
                round(runs["steer_sft_recompute_attention"]["tokens_per_second"] / runs["peft_span_logits"]["tokens_per_second"], 3),
            "steer_recompute_attention_peak_vs_serving_memory":
                round(runs["steer_sft_recompute_attention"]["peak_rss_mib"] / runs["steer_sft_recompute_attention"]["serving_rss_mib"], 3),
            "steer_checkpointing_vs_peft_all_logits_tokens_per_second":
                round(runs["steer_sft_checkpointing"]["tokens_per_second"] / runs["peft_all_logits"]["tokens_per_second"], 3),
            "steer_checkpointing_peak_vs_serving_memory":
                round(runs["steer_sft_checkpointing"]["peak_rss_mib"] / runs["steer_sft_checkpointing"]["serving_rss_mib"], 3),
            "steer_checkpointing_2_vs_peft_span_logits_tokens_per_second":
                round(runs["steer_sft_checkpointing_2"]["tokens_per_second"] / runs["peft_span_logits"]["tokens_per_second"], 3),
            "steer_checkpointing_2_peak_vs_serving_memory":
                round(runs["steer_sft_checkpointing_2"]["peak_rss_mib"] / runs["steer_sft_checkpointing_2"]["serving_rss_mib"], 3),
            **({} if not a.attention_blocks else {
                "steer_recompute_attention_blocks_vs_peft_span_logits_tokens_per_second":
                    round(runs["steer_sft_recompute_attention_blocks"]["tokens_per_second"] / runs["peft_span_logits"]["tokens_per_second"], 3),
                "steer_recompute_attention_blocks_peak_vs_serving_memory":
                    round(runs["steer_sft_recompute_attention_blocks"]["peak_rss_mib"] / runs["steer_sft_recompute_attention_blocks"]["serving_rss_mib"], 3)}),
            "peft_all_logits_peak_vs_steer_peak_memory": round(runs["peft_all_logits"]["peak_rss_mib"] / s["peak_rss_mib"], 3),
            "decode_p50_while_training_vs_alone": round(s["decode_ms_while_training_p50"] / s["decode_ms_alone_p50"], 3),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
