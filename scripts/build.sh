#!/usr/bin/env bash
# Builds server/target/steer-server.jar with the native library inside (no tests).
#   STEER_CUDA=ON bash scripts/build.sh      # with the CUDA backend (CUDA toolkit required)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/java-home.sh
mvn -B -q -Dsteer.cuda="${STEER_CUDA:-OFF}" -Dsteer.cuda.archs="${STEER_CUDA_ARCHS:-native}" -DskipTests package
echo "built server/target/steer-server.jar"
