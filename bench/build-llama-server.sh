#!/usr/bin/env bash
# Builds llama-server from the same pinned, patched llama.cpp tree that libsteer links (the peer in benchmarks) and
# prints its path. Reuses the tree the native build used; CPU by default, STEER_CUDA=ON for CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${STEER_CACHE:-$HOME/.cache/steer}
# The tree the last native build used (with our patches applied), unless LLAMA_CPP_DIR says otherwise.
tree=${LLAMA_CPP_DIR:-$(cat native/target/cmake/llama_cpp_dir.txt 2>/dev/null)}
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
