#!/usr/bin/env bash
# Crash durability at full size (issue 16): kill -9 at random moments during steers, stops, tags, deletes, jobs,
# activations and rollbacks, KILLS times over one data directory (CI runs 3). After each kill: SQLite's integrity
# check, every acknowledged record, delete and job, the adapter registry against its files, the active adapter.
#
#   bench/crash.sh [KILLS [SEED]]      (default 20 kills, seed 16; builds the native module too: -am, as a fresh
#                                      clone has no steer-native in the local Maven repository)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/java-home.sh
exec mvn -B -o -q -pl server -am verify -Dtest='CrashDurabilityTest#killsAtRandomMomentsLoseNothingAcknowledged' \
  -Dsurefire.failIfNoSpecifiedTests=false -Dsteer.crash.kills="${1:-20}" -Dsteer.crash.seed="${2:-16}"
