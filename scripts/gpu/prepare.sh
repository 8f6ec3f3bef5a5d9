#!/usr/bin/env bash
# Prepares what scripts/gpu/gpu-check.sh needs on the device machine (no Java, no Maven, no network there):
#   .gpu/llama.tar.xz  the CURRENT patched llama.cpp tree (the one LlamaSource.cmake selects for native/patches/ now),
#                      only the parts a libsteer build reads (no .git, models, docs, tools, other backends)
#   .gpu/jre.tar.xz    a jlink-ed Java runtime (JDK of scripts/java-home.sh) + the JDK's jni.h/jni_md.h for CMake
#   .gpu/java.tar.xz   server main classes + runtime dependency jars (sqlite-jdbc cut to Linux x86_64) + test classes
#                      (without the Selenium and openai-java tests) + scripts/gpu/src + the JUnit console launcher + tests.txt
# Run here, on the development machine:  bash scripts/gpu/prepare.sh   (REBUILD_JRE=1 to redo the JRE, which takes ~1 min)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
G=$ROOT/.gpu
source scripts/java-home.sh
JUNIT_PLATFORM=1.14.4   # junit-jupiter 5.14.4 (server/pom.xml) goes with platform 1.14.4
M2=${M2_REPO:-$HOME/.m2/repository}
CONSOLE=$M2/org/junit/platform/junit-platform-console-standalone/$JUNIT_PLATFORM/junit-platform-console-standalone-$JUNIT_PLATFORM.jar
XZ="nice -n 10 xz -T2"
WORK=$(mktemp -d /tmp/gpu-prepare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log() { echo "[$(date +%T)] $*"; }

# --- 1. the llama.cpp tree: the same key as native/cmake/LlamaSource.cmake ------------------------------------------
cat > "$WORK/hash.cmake" <<EOF
file(GLOB _patches "$ROOT/native/patches/*.patch")
list(SORT _patches)
set(_patch_text "")
foreach(_p IN LISTS _patches)
  get_filename_component(_name "\${_p}" NAME)
  file(READ "\${_p}" _t)
  string(APPEND _patch_text "\${_name}\n\${_t}")
endforeach()
string(SHA256 _patch_hash "\${_patch_text}")
message("\${_patch_hash}")
EOF
PATCH_HASH=$(cmake -P "$WORK/hash.cmake" 2>&1)
BUNDLE=$(sed -n 's/^set(STEER_LLAMA_BUNDLE_SHA256 "\([0-9a-f]*\)")/\1/p' native/cmake/LlamaSource.cmake)
TREE=${STEER_CACHE:-$HOME/.cache/steer}/llama.cpp/${BUNDLE:0:12}-${PATCH_HASH:0:8}
[ -f "$TREE/.steer-ready" ] || { echo "no prepared tree $TREE: run a native build once (mvn -o -q package -DskipTests)" >&2; exit 1; }
grep -q "patches $PATCH_HASH" "$TREE/.steer-ready" || { echo "$TREE/.steer-ready does not name patches $PATCH_HASH" >&2; exit 1; }
log "llama.cpp tree: $TREE"
if [ -f "$G/llama.tar.xz" ] && [ "$(cat "$G/llama.key" 2>/dev/null)" = "$(basename "$TREE")" ] && [ -z "${REBUILD_LLAMA:-}" ]; then
  log "llama.tar.xz is current ($(basename "$TREE")), kept"
else
  mkdir -p "$WORK/src/llama.cpp"
  # ggml adds a backend's folder only when that backend is ON (ggml_add_backend): CPU and CUDA are all we need.
  tar -C "$TREE" --exclude='ggml/src/ggml-'{blas,cann,et,hexagon,hip,metal,musa,opencl,openvino,rpc,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn} \
      -cf - CMakeLists.txt LICENSE licenses cmake common ggml include src vendor .steer-ready | tar -C "$WORK/src/llama.cpp" -xf -
  tar -C "$WORK/src" -cf - llama.cpp | $XZ -9 > "$G/llama.tar.xz.tmp" && mv "$G/llama.tar.xz.tmp" "$G/llama.tar.xz"
  basename "$TREE" > "$G/llama.key"
  log "llama.tar.xz: $(du -h "$G/llama.tar.xz" | cut -f1)"
fi

# --- 2. the Java runtime ------------------------------------------------------------------------------------------
if [ -f "$G/jre.tar.xz" ] && [ -z "${REBUILD_JRE:-}" ]; then
  log "jre.tar.xz exists, kept (REBUILD_JRE=1 to redo)"
else
  # jdeps over the server and its dependencies: java.base, compiler, instrument, management, naming, net.http, rmi,
  # security.jgss, sql (+ java.desktop, only "requires static" by Jetty's leak preventers, left out).
  jlink --add-modules java.base,java.compiler,java.instrument,java.logging,java.management,java.naming,java.net.http,java.rmi,java.security.jgss,java.sql,jdk.unsupported,jdk.zipfs,jdk.management,jdk.crypto.ec,jdk.charsets \
        --strip-debug --no-man-pages --no-header-files --output "$WORK/jre"
  rm -f "$WORK"/jre/lib/server/*.jsa                         # CDS archives: 15 MB, only start-up time
  strip --strip-unneeded "$WORK/jre/lib/server/libjvm.so"
  mkdir -p "$WORK/jre/include/linux"                          # for CMake's FindJNI (JNI headers + lib/server/libjvm.so)
  cp "$JAVA_HOME/include/jni.h" "$WORK/jre/include/"
  cp "$JAVA_HOME/include/linux/jni_md.h" "$WORK/jre/include/linux/"
  tar -C "$WORK" -cf - jre | $XZ -9e > "$G/jre.tar.xz.tmp" && mv "$G/jre.tar.xz.tmp" "$G/jre.tar.xz"
  log "jre.tar.xz: $(du -h "$G/jre.tar.xz" | cut -f1) ($("$WORK/jre/bin/java" -version 2>&1 | head -1))"
fi

# --- 3. classes and jars ------------------------------------------------------------------------------------------
[ -f "$CONSOLE" ] || mvn -B -q dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:$JUNIT_PLATFORM
# The server's runtime classpath without the reactor's steer-native (its jar only carries the CPU libsteer.so, which
# STEER_NATIVE_LIB replaces): resolved offline from a copy of the two poms.
mkdir -p "$WORK/poms/server"
sed '/<module>native<\/module>/d' pom.xml > "$WORK/poms/pom.xml"
python3 - "$ROOT/server/pom.xml" "$WORK/poms/server/pom.xml" <<'EOF'
import re, sys
p = open(sys.argv[1]).read()
p = re.sub(r'<dependency>\s*<groupId>dev\.steer</groupId>.*?</dependency>', '', p, flags=re.S)
open(sys.argv[2], 'w').write(p)
EOF
(cd "$WORK/poms" && mvn -B -o -q -pl server dependency:build-classpath -DincludeScope=runtime -Dmdep.outputFile="$WORK/cp-runtime.txt" >/dev/null)
RUNTIME_CP=$(cat "$WORK/cp-runtime.txt")
mkdir -p "$WORK/java/lib" "$WORK/main" "$WORK/test"
log "javac: server main"
find server/src/main/java -name '*.java' > "$WORK/main-sources.txt"
javac --release 21 -encoding UTF-8 -nowarn -d "$WORK/main" -cp "$RUNTIME_CP" @"$WORK/main-sources.txt"
cp -r server/src/main/resources/. "$WORK/main/"
log "javac: server tests + scripts/gpu/src"
{ find server/src/test/java -name '*.java' | grep -v -e '/ConsoleBrowserTest.java$' -e '/OpenAiClientTest.java$'
  find scripts/gpu/src -name '*.java'; } > "$WORK/test-sources.txt"
javac --release 21 -encoding UTF-8 -nowarn -d "$WORK/test" -cp "$WORK/main:$RUNTIME_CP:$CONSOLE" @"$WORK/test-sources.txt"
# Stored (uncompressed) jars: the .tar.xz around them then compresses ~2x better than the jars' own deflate.
# sqlite-jdbc keeps only its Linux x86_64 native library (it carries 20-odd platforms').
cp "$CONSOLE" "$WORK/junit-platform-console-standalone.jar"
python3 - "$WORK/java/lib" "$WORK/main" "$WORK/test" $(echo "$RUNTIME_CP" | tr ':' ' ') "$WORK/junit-platform-console-standalone.jar" <<'EOF2'
import os, sys, zipfile
out = sys.argv[1]
def store(name, entries):
    with zipfile.ZipFile(os.path.join(out, name), 'w', zipfile.ZIP_STORED) as z:
        for arc, data in entries:
            z.writestr(zipfile.ZipInfo(arc, (1980, 1, 1, 0, 0, 0)), data)
def from_dir(d):  # with directory entries: Javalin looks up its static folder (/console) as a directory
    for root, dirs, files in os.walk(d):
        dirs.sort()
        if root != d:
            yield os.path.relpath(root, d) + '/', b''
        for f in sorted(files):
            p = os.path.join(root, f)
            yield os.path.relpath(p, d), open(p, 'rb').read()
def from_jar(j):
    with zipfile.ZipFile(j) as z:
        for i in z.infolist():
            n = i.filename
            if n.upper().endswith(('.SF', '.RSA', '.DSA', '.EC')) and n.upper().startswith('META-INF/'):
                continue
            if n.startswith('org/sqlite/native/') and not 'org/sqlite/native/Linux/x86_64/'.startswith(n) \
                    and not n.startswith('org/sqlite/native/Linux/x86_64/'):
                continue
            yield n, z.read(n)
store('00-steer-main.jar', from_dir(sys.argv[2]))
store('01-steer-tests.jar', from_dir(sys.argv[3]))
for j in sys.argv[4:]:
    store(os.path.basename(j), from_jar(j))
EOF2

# --- 4. the tests that run the engine on models (tiny generated ones; the real-model ones cannot travel) ----------------
# A test class is selected when its source loads a model (TestModels, TinyModels, LlamaModel.load, TestServer);
# left out: the browser test (Selenium/Chromium), the openai-java client test (its jars are 75 MB), and the tests
# that only run on the real SmolLM2/Gemma files.
EXCLUDE='ConsoleBrowserTest|OpenAiClientTest|GemmaEndToEndTest|GemmaSteerLoopTest|GemmaTrainingTest|SmolLm2LearningTest|ToolCallsSmolLm2Test'
grep -rlE 'TestModels|TinyModels|LlamaModel\.load|TestServer' server/src/test/java --include='*Test.java' \
  | sed 's|server/src/test/java/||; s|\.java$||; s|/|.|g' | grep -vE "($EXCLUDE)$" | sort \
  | awk '{ g = ($0 ~ /^dev\.steer\.(llama|engine)\./) ? "core" : ($0 ~ /^dev\.steer\.http\./) ? "http" : "loop"; print g, $0 }' \
  > "$WORK/java/tests.txt"
log "tests: $(wc -l < "$WORK/java/tests.txt") classes ($(cut -d' ' -f1 "$WORK/java/tests.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))"
{ echo "prepared $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server native || echo ' + uncommitted changes')"
  echo "llama.cpp $(basename "$TREE")"
  echo "jdk $JAVA_HOME"; } > "$WORK/java/PREPARED.txt"
cp "$WORK/java/tests.txt" "$WORK/java/PREPARED.txt" "$G/"
tar -C "$WORK" -cf - java | $XZ -9 > "$G/java.tar.xz.tmp" && mv "$G/java.tar.xz.tmp" "$G/java.tar.xz"
log "java.tar.xz: $(du -h "$G/java.tar.xz" | cut -f1); .gpu: $(du -sh "$G" | cut -f1)"
