#!/bin/bash
# The guard benchmark: start-up scan of a 100 000-file tree (time, peak memory),
# then alert and remediation latency for violations made by separate processes.
#   bench/guard.sh BUILD [BACKEND...]     (root)   Results: bench/results/guard.md
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
BACKENDS=(${@:-fanotify bpf-tracepoint})
FILES=${FILES:-100000}
VIOLATIONS=${VIOLATIONS:-300}
out=bench/results/guard.md
mkdir -p bench/results
{
  echo "# Guard benchmark"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) cores. Tree of $FILES files owned by a service user;"
  echo "$VIOLATIONS violations (\`chown root\`), each by its own process, 10 ms apart; remediation on."
  echo "Latency: from just before the violating syscall to the alert line read / the owner restored."
  echo
  echo "| backend | files | start-up scan ms | peak RSS after start MiB | peak RSS at end MiB | alert p50 ms | alert p99 ms | remediation p50 ms | remediation p99 ms | missed |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for b in "${BACKENDS[@]}"; do "$BUILD/bench/fstrail_guard_bench" "$BUILD/fstrail" "$b" "$FILES" "$VIOLATIONS"; done
} | tee "$out"
