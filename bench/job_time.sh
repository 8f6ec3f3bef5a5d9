#!/usr/bin/env bash
# From job creation to serving, on a recording: a fresh copy of DATA_DIR (a server's --data-dir with steers in it), a
# fresh server on JAR, PREP seconds for its background preparation (train/JobPreparation), then one job (JOB_JSON,
# the body of POST /v1/fine_tuning/jobs). Prints one JSON line: the job's seconds from creation to its end, when its
# first and last training steps were reported and when its gate began (seconds after creation), the steps' tokens/s,
# the gate's verdict, the adapter file's sha256, and the server's resident memory before the job and its peak
# (VmRSS after PREP, VmHWM at the end: the job's graphs are the largest thing a server allocates). The machine's speed
# drifts by 15-40% within hours here: compare jars in alternated runs (docs/training.md, thirtieth session).
#
#   bash bench/job_time.sh server/target/steer-server.jar /path/to/recording \
#       '{"hyperparameters":{"seed":1},"filters":{"tag":"s9"}}' [PORT] [PREP] [MODEL]
set -euo pipefail
JAR=$(realpath "$1"); SRC=$2; JOB=$3; PORT=${4:-18399}; PREP=${5:-80}
MODEL=${6:-$HOME/.cache/steer/models/SmolLM2-135M-Instruct.Q4_1.gguf}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/java-home.sh"
DATA=$(mktemp -d /tmp/steer-job-time.XXXXXX)
cp -r "$SRC"/. "$DATA"/
java @"$ROOT/scripts/jvm.options" -jar "$JAR" --model "$MODEL" --port "$PORT" --data-dir "$DATA" --parallel 4 --threads 2 \
    > "$DATA.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 120); do curl -sf "localhost:$PORT/v1/models" > /dev/null && break; sleep 1; done
sleep "$PREP"
IDLE_KB=$(awk '/^VmRSS/ {print $2}' /proc/$SERVER/status)
ID=$(curl -sf "localhost:$PORT/v1/fine_tuning/jobs" -d "$JOB" | python3 -c "import sys, json; print(json.load(sys.stdin)['id'])")
for _ in $(seq 1 900); do
  S=$(curl -sf "localhost:$PORT/v1/fine_tuning/jobs/$ID" | python3 -c "import sys, json; print(json.load(sys.stdin)['status'])")
  case "$S" in succeeded|failed|cancelled) break;; esac
  sleep 1
done
PEAK_KB=$(awk '/^VmHWM/ {print $2}' /proc/$SERVER/status)
curl -sf "localhost:$PORT/v1/fine_tuning/jobs/$ID" > "$DATA/job.json"
curl -sf "localhost:$PORT/v1/fine_tuning/jobs/$ID/events?limit=1000" > "$DATA/events.json"
ADAPTER=$(python3 -c "import sys, json; print(json.load(open(sys.argv[1])).get('adapter_version') or '')" "$DATA/job.json")
SHA=$([ -n "$ADAPTER" ] && sha256sum "$DATA/adapters/$ADAPTER.gguf" | cut -d' ' -f1 || echo "")
python3 - "$DATA/job.json" "$DATA/events.json" "$SHA" "$IDLE_KB" "$PEAK_KB" <<'PY'
import json, sys
job = json.load(open(sys.argv[1])); events = json.load(open(sys.argv[2]))["data"]
t0 = job["created_at"]
steps = sorted((e for e in events if e["type"] == "metrics"), key=lambda e: e["created_at"])
gate = [e for e in events if e["message"].startswith("Checking the adapter")]
verdict = [e["message"] for e in events if e["message"].startswith("Eval gate")]
print(json.dumps({"status": job["status"], "job_seconds": (job["finished_at"] or t0) - t0,
                  "first_step_at": steps[0]["created_at"] - t0 if steps else None,
                  "last_step_at": steps[-1]["created_at"] - t0 if steps else None,
                  "gate_began_at": gate[0]["created_at"] - t0 if gate else None,
                  "tokens_per_second": steps[-1]["data"].get("tokens_per_second") if steps else None,
                  "gate": verdict[0][:160] if verdict else None, "adapter_sha256": sys.argv[3],
                  "rss_before_job_mib": round(int(sys.argv[4]) / 1024), "peak_rss_mib": round(int(sys.argv[5]) / 1024)}))
PY
