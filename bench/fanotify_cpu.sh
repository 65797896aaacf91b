#!/bin/bash
# Monitor CPU of fstrail's fanotify backend per 1000 events, measured over the workload
# only (not start-up, tree scan or shutdown): utime+stime of the monitor process from
# /proc/PID/stat just before and just after (once its output stopped growing), divided
# by the events it printed meanwhile. Two workloads:
#   burst: BURST_OPS ops from BURST_PROCESSES processes at once, as fast as they can;
#   timed: OPS ops from one process (the workload of the timed runs in bench/run.sh).
# Each is run ROUNDS times; every run's value is printed, then the medians.
#   bench/fanotify_cpu.sh BUILD     (root)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
OPS=${OPS:-70000}
BURST_OPS=${BURST_OPS:-200000}
BURST_PROCESSES=${BURST_PROCESSES:-2}
FSTRAIL=${FSTRAIL:-$BUILD/fstrail}
WORKLOAD=$BUILD/bench/fstrail_watch_workload
[ "$(id -u)" = 0 ] || { echo "fanotify_cpu: needs root (fanotify)" >&2; exit 1; }
[ -x "$FSTRAIL" ] && [ -x "$WORKLOAD" ] || { echo "fanotify_cpu: build first: make build" >&2; exit 1; }
BENCH_DIR=${BENCH_DIR:-/dev/shm}
WORK=$(mktemp -d "$BENCH_DIR/fstrail-cpu.XXXXXX")
OUT=$(mktemp -d /tmp/fstrail-cpu-out.XXXXXX)
WATCHED=$WORK/watched
mkdir -p "$WATCHED"
for i in $(seq 1 50); do mkdir -p "$WATCHED/tree/$i/x/y"; touch "$WATCHED/tree/$i/x/y/f"; done
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

run() {  # NAME OPS PROCESSES: prints "ms_per_1000 events lost"
  local out=$OUT/$1.out err=$OUT/$1.err
  rm -rf "$WATCHED/run"; mkdir -p "$WATCHED/run/a/b/c/d/e"
  "$FSTRAIL" watch --backend fanotify --json -o "$out" "$WATCHED" 2>"$err" &
  PID=$!
  for _ in $(seq 1 100); do
    grep -q "watching" "$err" 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.5
  local before after offset last=-1 now
  offset=$(size "$out")
  before=$(ticks "$PID")
  "$WORKLOAD" "$WATCHED/run" "$2" "$3" >/dev/null
  for _ in $(seq 1 120); do  # until the output stops growing for 0.5 s
    now=$(size "$out")
    [ "$now" = "$last" ] && break
    last=$now; sleep 0.5
  done
  after=$(ticks "$PID")
  kill -INT "$PID"; wait "$PID" || true; PID=
  local events lost
  events=$(tail -c +$((offset + 1)) "$out" | grep -c "$WATCHED/run" || true)
  lost=$(sed -n 's/.* \([0-9]*\) lost.*/\1/p' "$err" | tail -1)
  awk -v t=$((after - before)) -v hz="$HZ" -v n="$events" -v l="$lost" \
    'BEGIN {printf "%.2f %d %d\n", (n ? t * 1000 / hz / n * 1000 : 0), n, l}'
}

declare -a BURST TIMED
for r in $(seq 1 "$ROUNDS"); do
  read -r ms n lost < <(run burst "$BURST_OPS" "$BURST_PROCESSES")
  BURST+=("$ms"); echo "fanotify_cpu: round $r burst: $ms ms/1000 events ($n events, $lost lost)" >&2
  read -r ms n lost < <(run timed "$OPS" 1)
  TIMED+=("$ms"); echo "fanotify_cpu: round $r timed: $ms ms/1000 events ($n events, $lost lost)" >&2
done
echo "burst (${BURST_OPS} ops, ${BURST_PROCESSES} processes): median $(printf '%s\n' "${BURST[@]}" | median) ms/1000 events (runs: ${BURST[*]})"
echo "timed (${OPS} ops, 1 process): median $(printf '%s\n' "${TIMED[@]}" | median) ms/1000 events (runs: ${TIMED[*]})"
