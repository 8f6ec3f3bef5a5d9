#!/usr/bin/env bash
# Builds everything and runs every test: unit tests on tiny generated models, end-to-end tests on the real models
# SmolLM2-135M-Instruct (the default) and Gemma 3 270M (fetched once into ~/.cache/steer; they skip, saying so, only
# if they cannot be fetched), a smoke test of the packaged server jar, and the official OpenAI Python SDK's tests
# against it. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/java-home.sh

if STEER_TEST_SMOLLM2=$(bash models/fetch-smollm2.sh); then
  export STEER_TEST_SMOLLM2
else
  echo "WARNING: could not fetch SmolLM2-135M-Instruct; its end-to-end tests will be skipped" >&2
fi
if STEER_TEST_GEMMA=$(bash models/fetch-gemma3-270m.sh); then
  export STEER_TEST_GEMMA
else
  echo "WARNING: could not fetch Gemma 3 270M; its end-to-end tests will be skipped" >&2
fi

mvn -B verify

# The packaged jar starts and answers /health; then the official OpenAI Python SDK runs its tests against it
# (scripts/sdk-tests.sh: a cached venv, pip from PyPI). Here rather than in a JUnit test: it needs the real
# model, the packaged jar and Python, which this step has and `mvn verify` on a developer's machine may not.
if [ -n "${STEER_TEST_SMOLLM2:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  java @scripts/jvm.options -jar server/target/steer-server.jar --model "$STEER_TEST_SMOLLM2" --port "$port" \
    --data-dir server/target/smoke-data > server/target/smoke.log 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do
    if body=$(curl -sf "http://127.0.0.1:$port/health"); then
      echo "smoke: /health -> $body"
      [[ "$body" == *'"status":"ok"'* ]] || { echo "smoke: unexpected /health body" >&2; exit 1; }
      bash scripts/sdk-tests.sh "http://127.0.0.1:$port/v1" || { tail -50 server/target/smoke.log >&2; exit 1; }
      exit 0
    fi
    kill -0 $pid 2>/dev/null || { cat server/target/smoke.log >&2; echo "smoke: server exited" >&2; exit 1; }
    sleep 1
  done
  cat server/target/smoke.log >&2
  echo "smoke: server did not answer /health" >&2
  exit 1
fi
