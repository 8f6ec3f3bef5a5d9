#!/usr/bin/env bash
# The fuzz suite at full size (issue 16): hostile requests over every route against a running Steer server,
# from the same generator as the CI test (server/src/test/java/dev/steer/testing/HostileRequests.java).
#
#   bench/fuzz.sh BASE_URL [REQUESTS [SEED [THREADS [API_KEY]]]]
#   e.g. java -jar server/target/steer-server.jar --model M.gguf --port 8080 --api-key k --ctx-size 2048 --parallel 4 &
#        bench/fuzz.sh http://127.0.0.1:8080 10000 1 8 k
#
# Needs the jar and the compiled tests (mvn -pl server package, or test-compile beside an existing jar). Prints one
# JSON object (counts by status, 5xx, error events inside 200 streams, hangs over 30 s, whether the server still
# answers a normal chat); exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/java-home.sh
base=${1:?usage: bench/fuzz.sh BASE_URL [REQUESTS [SEED [THREADS [API_KEY]]]]}
exec java -cp server/target/steer-server.jar:server/target/test-classes dev.steer.testing.Fuzz \
  "$base" "${2:-10000}" "${3:-1}" "${4:-8}" "${5:-}"
