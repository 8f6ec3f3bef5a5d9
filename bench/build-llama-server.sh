#!/usr/bin/env bash
# Builds llama-server from the same pinned, patched llama.cpp tree that libsteer links (the peer in benchmarks) and
# prints its path. Reuses the tree native/cmake/LlamaSource.cmake prepared; CPU by default, STEER_CUDA=ON for CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${STEER_CACHE:-$HOME/.cache/steer}
tree=${LLAMA_CPP_DIR:-$(ls -d "$cache"/llama.cpp/*/ 2>/dev/null | grep -v '\.tmp/$' | head -n 1)}
tree=${tree%/}
[ -f "$tree/include/llama.h" ] || { echo "no llama.cpp tree: build Steer first (bash scripts/build.sh)" >&2; exit 1; }
cuda=${STEER_CUDA:-OFF}
out=$cache/bench/llama-server-$(basename "$tree")-cuda$cuda
launcher=(); command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# The same CPU flags as native/CMakeLists.txt, so both sides run the same kernels.
cmake -S "$tree" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF "${launcher[@]}" \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_BMI2=ON -DGGML_CUDA="$cuda" -DCMAKE_CUDA_ARCHITECTURES="${STEER_CUDA_ARCHS:-native}" >&2
cmake --build "$out" --target llama-server >&2
echo "$out/bin/llama-server"
