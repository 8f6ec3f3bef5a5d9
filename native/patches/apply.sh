#!/usr/bin/env bash
# Applies native/patches/*.patch, in name order, to the llama.cpp tree given as $1.
set -euo pipefail
tree=${1:?usage: apply.sh LLAMA_CPP_DIR}
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
for p in "$here"/*.patch; do
  echo "applying $(basename "$p")"
  git -C "$tree" apply --whitespace=nowarn "$p"
done
