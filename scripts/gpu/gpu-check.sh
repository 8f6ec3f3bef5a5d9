#!/usr/bin/env bash
# One-shot GPU check of Steer, run in the repository root on the device machine (the run tool, carry [".gpu"]):
#   bash scripts/gpu/gpu-check.sh
# 1. unpacks .gpu/{jre,llama,java}.tar.xz (made by scripts/gpu/prepare.sh) into $GPU_CHECK_WORK (/tmp/gpucheck);
# 2. builds libsteer.so with CUDA (sm_90) from native/ and the carried patched llama.cpp tree into /tmp/gpubuild;
# 3. runs the engine tests (.gpu/tests.txt: core = llama+engine, loop = train/e2e/adapters/steering, http) with every
#    layer offloaded (STEER_TEST_GPU_LAYERS=-1, STEER_NATIVE_LIB=the new library), the three groups as three JVMs;
# 4. if time is left, a decode-throughput number through the Engine on a SmolLM2-135M-shaped random Q4_1 model.
# Everything runs under one budget (GPU_CHECK_BUDGET seconds, default 540): the build gets what the tests leave
# (GPU_CHECK_TEST_RESERVE, default 150 s), the tests what is left, each under `timeout` (a JVM past its time gets
# SIGQUIT, i.e. a thread dump into its log, then SIGKILL). It is safe to rerun at once on a still-warm machine: the
# unpacked files and the ninja build in /tmp are reused, so a build that ran out of time continues.
# Results: $OUT/summary.txt (also on stdout), $OUT/nvidia-smi.txt, $OUT/build-tail.txt, $OUT/results.tar.xz (JUnit XML,
# full test/build/bench logs).
# Dry run without CUDA: GPU_CHECK_CPU=1 STEER_NATIVE_LIB=<a built CPU libsteer.so> [GPU_CHECK_ONLY=<class regex>] —
# configures (not builds) with STEER_CUDA=OFF, runs the selected tests on the CPU (GPU_CHECK_FULL_BUILD=1 builds too).
set -uo pipefail
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}
TEST_RESERVE=${GPU_CHECK_TEST_RESERVE:-150}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
G=$ROOT/.gpu
W=${GPU_CHECK_WORK:-/tmp/gpucheck}
CPU_MODE=${GPU_CHECK_CPU:-}
if [ -n "$CPU_MODE" ]; then B=${GPU_CHECK_BUILD_DIR:-/tmp/gpubuild-cpu}; else B=${GPU_CHECK_BUILD_DIR:-/tmp/gpubuild}; fi
OUT=${OUT:-$W/out}
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
rm -rf "$W/logs" "$W/reports"   # this run's logs and reports only (the unpacked files and the build stay)
mkdir -p "$OUT" "$W/logs"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
say() { echo "[$(date +%T) +$(( $(date +%s) - T0 ))s] $*" | tee -a "$SUMMARY"; }
note() { echo "$*" | tee -a "$SUMMARY"; }

package() {
  # Everything else goes into one archive (the tool returns at most 8 files).
  [ -f "$W/logs/build.log" ] && tail -n 60 "$W/logs/build.log" > "$OUT/build-tail.txt"
  if command -v xz >/dev/null; then
    (cd "$W" && tar -cf - logs reports 2>/dev/null | xz -T0 -6 > "$OUT/results.tar.xz") || true
  else
    (cd "$W" && tar -czf "$OUT/results.tar.gz" logs reports 2>/dev/null) || true
  fi
  say "results in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
}
trap package EXIT

say "gpu-check: budget ${BUDGET}s, $(nproc) cores, $(hostname 2>/dev/null || cat /etc/hostname), repo $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
note "prepared: $(head -1 "$G/PREPARED.txt" 2>/dev/null) / $(sed -n 2p "$G/PREPARED.txt" 2>/dev/null)"
if [ -z "$CPU_MODE" ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$OUT/nvidia-smi.txt"
  note "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -2 | tr '\n' ' ')"
  NVCC=$(command -v nvcc || ls -d /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc 2>/dev/null | head -1)
  [ -n "$NVCC" ] || { say "FAIL: no nvcc on PATH nor under /usr/local/cuda*"; exit 1; }
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  export PATH="$CUDA_HOME/bin:$PATH"
  export LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note "nvcc: $NVCC ($("$NVCC" --version | grep -o 'release [0-9.]*'))"
fi
note "cmake: $(cmake --version | head -1); ninja: $(ninja --version 2>/dev/null || echo none); c++: $(c++ --version 2>&1 | head -1)"

# --- 1. unpack --------------------------------------------------------------------------------------------------------
KEY=$(cat "$G"/*.tar.xz | cksum | cut -d' ' -f1)
if [ "$(cat "$W/.unpacked" 2>/dev/null)" != "$KEY" ]; then
  rm -rf "$W/jre" "$W/llama.cpp" "$W/java"
  for t in jre llama java; do
    if command -v xz >/dev/null; then tar -C "$W" -xJf "$G/$t.tar.xz" &
    else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$G/$t.tar.xz" "$W" & fi
  done
  wait
  [ -x "$W/jre/bin/java" ] && [ -f "$W/llama.cpp/include/llama.h" ] && [ -f "$W/java/tests.txt" ] || { say "FAIL: unpacking .gpu/*.tar.xz"; exit 1; }
  echo "$KEY" > "$W/.unpacked"
fi
JRE=$W/jre
say "unpacked: $("$JRE/bin/java" -version 2>&1 | head -1); llama.cpp $(sed -n 's/^patches //p' "$W/llama.cpp/.steer-ready" | cut -c1-8)"

# --- 2. build libsteer.so -----------------------------------------------------------------------------------------------
GEN="Ninja"; command -v ninja >/dev/null || GEN="Unix Makefiles"
# native/ is copied to a fixed place, so that a rerun whose checkout lies elsewhere still reuses the build folder.
mkdir -p "$W/native" && (cd "$ROOT/native" && tar --exclude=./target -cf - .) | tar -C "$W/native" -xf -
CMAKE_ARGS=(-S "$W/native" -B "$B" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CPP_DIR="$W/llama.cpp"
  -DJAVA_HOME="$JRE" -DJAVA_INCLUDE_PATH="$JRE/include" -DJAVA_INCLUDE_PATH2="$JRE/include/linux"
  -DJAVA_JVM_LIBRARY="$JRE/lib/server/libjvm.so" -DJAVA_AWT_INCLUDE_PATH="$JRE/include" -DJAVA_AWT_LIBRARY="$JRE/lib/server/libjvm.so")
if [ -n "$CPU_MODE" ]; then
  CMAKE_ARGS+=(-DSTEER_CUDA=OFF)
else
  CMAKE_ARGS+=(-DSTEER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${GPU_CHECK_CUDA_ARCHS:-90} -DCMAKE_CUDA_COMPILER="$NVCC")
fi
# e.g. GPU_CHECK_CMAKE_EXTRA="-DGGML_CUDA_COMPRESSION_MODE=speed" (word-split on purpose)
CMAKE_ARGS+=(${GPU_CHECK_CMAKE_EXTRA:-})
say "configure: cmake ${CMAKE_ARGS[*]}"
JAVA_HOME=$JRE timeout 240 cmake "${CMAKE_ARGS[@]}" > "$W/logs/configure.log" 2>&1
rc=$?
grep -E "llama.cpp: using|Found JNI|CUDA Toolkit found|Using CMAKE_CUDA_ARCHITECTURES|FlashAttention K-V|NCCL|CMAKE_BUILD_TYPE=" "$W/logs/configure.log" | sed 's/^/  /' | tee -a "$SUMMARY"
if [ $rc -ne 0 ]; then
  say "FAIL: cmake configure (rc $rc)"; tail -n 40 "$W/logs/configure.log" | tee -a "$SUMMARY"; exit 1
fi
say "configure ok"

if [ -n "$CPU_MODE" ] && [ -z "${GPU_CHECK_FULL_BUILD:-}" ]; then
  LIB=${STEER_NATIVE_LIB:?GPU_CHECK_CPU=1 without GPU_CHECK_FULL_BUILD needs STEER_NATIVE_LIB=<a built libsteer.so>}
  say "dry run: build skipped, using STEER_NATIVE_LIB=$LIB"
else
  LIB=$B/libsteer.so
  T_BUILD=$(( $(left) - TEST_RESERVE ))
  [ $T_BUILD -lt 60 ] && T_BUILD=60
  say "build: cmake --build -j$JOBS --target steer (timeout ${T_BUILD}s)"
  (
    export NINJA_STATUS="[%f/%t %es] "
    while sleep 30; do
      p=$(tail -c 4000 "$W/logs/build.log" 2>/dev/null | grep -o '^\[[0-9]*/[0-9]* [0-9.]*s\]' | tail -1)
      echo "[$(date +%T) +$(( $(date +%s) - T0 ))s]   building ${p:-...}"
    done
  ) & PROGRESS=$!
  NINJA_STATUS="[%f/%t %es] " timeout -k 10 "$T_BUILD" cmake --build "$B" -j "$JOBS" --target steer > "$W/logs/build.log" 2>&1
  rc=$?
  kill $PROGRESS 2>/dev/null; wait $PROGRESS 2>/dev/null
  last=$(grep -o '^\[[0-9]*/[0-9]* [0-9.]*s\]' "$W/logs/build.log" | tail -1)
  if [ $rc -ne 0 ] || [ ! -f "$LIB" ]; then
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      say "FAIL: build ran out of time at ${last:-?} (rerun the same command at once: ninja continues in $B)"
    else
      say "FAIL: build failed (rc $rc) at ${last:-?}"
      grep -E -m 30 "FAILED|error|Error" "$W/logs/build.log" | cut -c1-400 | tee -a "$SUMMARY"
    fi
    tail -n 30 "$W/logs/build.log" | cut -c1-400
    exit 1
  fi
  say "build ok ${last:-(up to date)}: $(ls -la "$LIB" | awk '{print $5}') bytes"
fi
ldd "$LIB" > "$W/logs/ldd.txt" 2>&1
note "  libsteer links: $(grep -oE '^\s*lib(cuda|cudart|cublas|cublasLt|nccl|stdc\+\+)[^ ]*' "$W/logs/ldd.txt" | tr -d '\t ' | tr '\n' ' ')"
grep -q "not found" "$W/logs/ldd.txt" && { say "WARNING: unresolved libraries:"; grep "not found" "$W/logs/ldd.txt" | tee -a "$SUMMARY"; }

# --- 3. tests -----------------------------------------------------------------------------------------------------------
export STEER_NATIVE_LIB=$LIB
unset STEER_TEST_SMOLLM2 STEER_TEST_GEMMA
if [ -n "$CPU_MODE" ]; then unset STEER_TEST_GPU_LAYERS; else export STEER_TEST_GPU_LAYERS=${GPU_CHECK_GPU_LAYERS:--1}; fi
CP=$(ls "$W"/java/lib/*.jar | tr '\n' ':')
JAVA=("$JRE/bin/java" --enable-native-access=ALL-UNNAMED -Xss4m -XX:ErrorFile="$W/logs/hs_err_%p.log" -cp "$CP")
"${JAVA[@]}" dev.steer.engine.GpuDecodeBench probe > "$W/logs/probe.log" 2>&1
note "probe: $(grep -E '^(systemInfo|supportsGpuOffload)' "$W/logs/probe.log" | cut -c1-600 | tr '\n' ' ')"
grep -q '^supportsGpuOffload' "$W/logs/probe.log" || { say "FAIL: the JVM could not load $LIB"; tail -n 30 "$W/logs/probe.log" | tee -a "$SUMMARY"; exit 1; }
[ -z "$CPU_MODE" ] && ! grep -q 'supportsGpuOffload: true' "$W/logs/probe.log" && say "WARNING: libsteer reports no GPU offload"

GROUPS_RUN=${GPU_CHECK_GROUPS:-core loop http}
T_TESTS=$(( $(left) - 25 ))
if [ -z "$CPU_MODE" ] && [ -z "${GPU_CHECK_NO_BENCH:-}" ] && [ $T_TESTS -gt 240 ]; then
  T_TESTS=$(( T_TESTS - 60 ))   # keep a minute for the throughput number when the budget allows
fi
say "tests: STEER_TEST_GPU_LAYERS=${STEER_TEST_GPU_LAYERS:-unset}, groups: $GROUPS_RUN ($( [ -n "${GPU_CHECK_SEQUENTIAL:-}" ] && echo one after another || echo concurrently)), timeout ${T_TESTS}s"
run_group() {
  local g=$1 timeout_s=$2
  local classes
  classes=$(awk -v g="$g" '$1 == g { print $2 }' "$W/java/tests.txt" | grep -E "${GPU_CHECK_ONLY:-.}")
  [ -z "$classes" ] && return 0
  local args=()
  for c in $classes; do args+=(--select-class "$c"); done
  rm -rf "$W/reports/$g"
  timeout -s QUIT -k 15 "$timeout_s" "${JAVA[@]}" -Djava.io.tmpdir="$W/tmp" org.junit.platform.console.ConsoleLauncher execute \
    --disable-banner --disable-ansi-colors --details=testfeed --reports-dir="$W/reports/$g" \
    --config=junit.jupiter.execution.timeout.default=10m "${args[@]}" > "$W/logs/test-$g.log" 2>&1
  echo $? > "$W/logs/test-$g.rc"
}
mkdir -p "$W/tmp"
if [ -n "${GPU_CHECK_SEQUENTIAL:-}" ]; then
  for g in $GROUPS_RUN; do run_group "$g" "$(( $(left) - 25 ))"; done
else
  pids=()
  for g in $GROUPS_RUN; do run_group "$g" "$T_TESTS" & pids+=($!); done
  ( while sleep 45; do echo "[$(date +%T) +$(( $(date +%s) - T0 ))s]   tests: $(for g in $GROUPS_RUN; do echo -n "$g $(grep -cE ':: (SUCCESSFUL|FAILED|ABORTED|SKIPPED)' "$W/logs/test-$g.log" 2>/dev/null) done, "; done)$(cat "$W"/logs/test-*.log 2>/dev/null | grep -c ':: FAILED') failed so far"; done ) & PROGRESS=$!
  wait "${pids[@]}"
  kill $PROGRESS 2>/dev/null; wait $PROGRESS 2>/dev/null
fi
for g in $GROUPS_RUN; do
  [ -f "$W/logs/test-$g.rc" ] || continue
  rc=$(cat "$W/logs/test-$g.rc")
  case $rc in 0) s="passed";; 1) s="FAILURES";; 124|137) s="TIMED OUT (thread dump in logs/test-$g.log)";; *) s="rc $rc (a crash? see logs/hs_err_* and the end of logs/test-$g.log)";; esac
  note "group $g: $s; $(grep -E '^\[ *[0-9]+ (tests (successful|failed|skipped|aborted)|containers failed)' "$W/logs/test-$g.log" | tr -s ' ' | tr '\n' ' ')"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then   # what was still running when time ran out
    awk -F' :: ' '{ if ($2 == "STARTED") open[$1] = 1; else delete open[$1] } END { for (t in open) print "  still running: " t }' "$W/logs/test-$g.log" | tee -a "$SUMMARY"
  fi
  if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then   # no JUnit XML when the JVM was killed or died: the feed says what failed
    grep ':: FAILED' "$W/logs/test-$g.log" | head -20 | sed 's/^/  FAILED (feed) /' | tee -a "$SUMMARY"
  fi
done
python3 - "$W/reports" <<'EOF' | tee -a "$SUMMARY"
import glob, os, sys, xml.etree.ElementTree as ET
tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
bad, skipped, per_class = [], {}, {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*.xml"))):
    try:
        root = ET.parse(f).getroot()
    except ET.ParseError as e:
        print("  unreadable report", f, e); continue
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for k in tot:
            tot[k] += int(suite.get(k, 0))
        for tc in suite.iter("testcase"):
            cls = tc.get("classname", "?")
            pc = per_class.setdefault(cls, [0, 0.0])
            pc[0] += 1; pc[1] += float(tc.get("time", 0) or 0)
            for kind in ("failure", "error"):
                for el in tc.findall(kind):
                    msg = (el.get("message") or (el.text or "").strip().split("\n")[0])[:300]
                    bad.append("%s.%s: %s: %s" % (cls.split(".")[-1], tc.get("name"), kind, msg))
            for el in tc.findall("skipped"):
                skipped.setdefault(cls.split(".")[-1], []).append((el.get("message") or "")[:120])
print("junit: %(tests)d tests, %(failures)d failures, %(errors)d errors, %(skipped)d skipped" % tot)
for x in bad[:40]:
    print("  FAILED " + x)
if len(bad) > 40:
    print("  ... and %d more failures (results.tar.xz: reports/*/TEST-junit-jupiter.xml)" % (len(bad) - 40))
for c, m in sorted(skipped.items()):
    print("  skipped %s x%d: %s" % (c, len(m), m[0]))
slow = sorted(per_class.items(), key=lambda kv: -kv[1][1])[:8]
print("  slowest classes: " + ", ".join("%s %.0fs" % (c.split(".")[-1], t) for c, (n, t) in slow))
EOF

# --- 4. throughput ------------------------------------------------------------------------------------------------------
if [ -z "${GPU_CHECK_NO_BENCH:-}" ] && { [ -z "$CPU_MODE" ] || [ -n "${GPU_CHECK_BENCH_ARGS:-}" ]; } && [ "$(left)" -gt 50 ]; then
  say "bench: decode throughput through the Engine, SmolLM2-135M-shaped random Q4_1 model (timeout $(( $(left) - 15 ))s)"
  timeout -s QUIT -k 10 $(( $(left) - 15 )) "${JAVA[@]}" dev.steer.engine.GpuDecodeBench bench ${GPU_CHECK_BENCH_ARGS:-128 1,8,32} > "$W/logs/bench.log" 2>&1
  grep '^bench:' "$W/logs/bench.log" | tee -a "$SUMMARY"
  grep -q 'rep=1' "$W/logs/bench.log" || tail -n 20 "$W/logs/bench.log"
else
  say "bench: skipped ($(left)s left)"
fi
say "done"
