#!/usr/bin/env bash
# Builds Steer and serves a model on http://127.0.0.1:${STEER_PORT:-8080}.
#   bash run.sh                          # the default model, SmolLM2-135M-Instruct (fetched once into ~/.cache/steer)
#   bash run.sh --model path/to/x.gguf   # any GGUF; extra arguments go to the server (--help lists them)
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/build.sh
source scripts/java-home.sh
args=("$@")
if [[ " $* " != *" --model "* && " $* " != *" -m "* && -z "${STEER_MODEL:-}" ]]; then
  args=(--model "$(bash models/fetch-smollm2.sh)" "${args[@]}")
fi
exec java @scripts/jvm.options -jar server/target/steer-server.jar "${args[@]}"
