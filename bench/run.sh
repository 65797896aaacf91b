#!/bin/bash
# The watch benchmark: how much a monitor slows a workload inside and outside the
# tree it watches, whether it keeps up with a burst, and what it costs in CPU.
#   bench/run.sh BUILD            (root: fanotify, fatrace)
# Monitors alternate within each round so that noise from other load on the machine
# hits all of them alike; the table shows medians over the rounds of each monitor's
# time divided by the no-monitor time of the same round. Results: bench/results/watch.md.
# Another monitor is one more monitor_NAME function (start it on $WATCHED, print its
# pid) plus its name in MONITORS, and a count_NAME for the burst.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-70000}            # per timed run
BURST_OPS=${BURST_OPS:-200000}
MONITORS=(${MONITORS:-none fstrail-fanotify inotifywait fatrace})
FSTRAIL=$BUILD/fstrail
WORKLOAD=$BUILD/bench/fstrail_watch_workload
[ "$(id -u)" = 0 ] || { echo "bench: needs root (fanotify, fatrace)" >&2; exit 1; }
[ -x "$FSTRAIL" ] && [ -x "$WORKLOAD" ] || { echo "bench: build first: make build" >&2; exit 1; }

# The workload runs on a tmpfs by default: on this shared machine, other jobs' disk
# traffic made no-monitor runs on ext4 vary 10x between rounds. BENCH_DIR=/var/tmp
# measures a disk filesystem.
BENCH_DIR=${BENCH_DIR:-/dev/shm}
WORK=$(mktemp -d "$BENCH_DIR/fstrail-bench.XXXXXX")
OUT=$(mktemp -d /tmp/fstrail-bench-out.XXXXXX)  # monitor output, off that filesystem
WATCHED=$WORK/watched
OUTSIDE=$WORK/outside
mkdir -p "$WATCHED" "$OUTSIDE"
# A watched tree of some size, so per-directory marks are not a toy case.
for i in $(seq 1 50); do mkdir -p "$WATCHED/tree/$i/x/y"; touch "$WATCHED/tree/$i/x/y/f"; done
MONITOR_PID=
cleanup() {
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null || true
  rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT

# --- monitors: each starts in the background writing to $OUT/NAME.out and sets MONITOR_PID
monitor_none() { MONITOR_PID=; }
monitor_fstrail-fanotify() {
  "$FSTRAIL" watch --backend fanotify --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
monitor_inotifywait() {
  inotifywait -mrq -e create,delete,moved_from,moved_to,attrib,close_write,modify "$WATCHED" >"$OUT/$1.out" 2>/dev/null &
  MONITOR_PID=$!
}
monitor_fatrace() {  # whole filesystem: it cannot watch just a tree
  (cd "$WATCHED" && exec fatrace -c -o "$OUT/$1.out" 2>"$OUT/$1.err") &
  MONITOR_PID=$!
}

# Events each monitor printed for the burst directory.
count_fstrail-fanotify() { grep -c "$WATCHED/burst" "$OUT/$1.out" || true; }
count_inotifywait() { grep -c "$WATCHED/burst" "$OUT/$1.out" || true; }
count_fatrace() { grep -c "$WATCHED/burst" "$OUT/$1.out" || true; }
# What each monitor, by its own definition, should print per workload iteration.
declare -A PER_ITERATION=(
  [fstrail-fanotify]=7  # create modify chmod rename delete mkdir rmdir
  [inotifywait]=9       # + MODIFY and CLOSE_WRITE apart, MOVED_FROM and MOVED_TO apart
)

start_monitor() {  # NAME: starts it and waits until it reports a probe file
  rm -f "$OUT/$1.out" "$OUT/$1.err"
  "monitor_$1" "$1"
  [ -z "$MONITOR_PID" ] && return
  for i in $(seq 1 100); do
    local probe="$WATCHED/ready-$RANDOM"
    echo x >"$probe"; rm -f "$probe"
    if grep -q "ready-" "$OUT/$1.out" 2>/dev/null; then return; fi  # any probe: output may be buffered
    sleep 0.1
  done
  echo "bench: monitor $1 did not start" >&2; cat "$OUT/$1.err" >&2 2>/dev/null; exit 1
}
stop_monitor() {
  [ -z "$MONITOR_PID" ] && return
  # SIGINT first (fstrail prints its summary); background jobs of a script ignore it, so then SIGTERM.
  kill -INT "$MONITOR_PID" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$MONITOR_PID" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$MONITOR_PID" 2>/dev/null || true
  wait "$MONITOR_PID" 2>/dev/null || true; MONITOR_PID=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_quiet() {  # until the monitor's output stops growing (at most 15 s: fatrace sees the whole system)
  local last=-1 size
  for _ in $(seq 1 30); do
    size=$(stat -c %s "$OUT/$1.out" 2>/dev/null || echo 0)
    [ "$size" = "$last" ] && return
    last=$size; sleep 0.5
  done
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "bench: $ROUNDS rounds x ${#MONITORS[@]} monitors x (inside, outside), $OPS ops each" >&2
declare -A RATIOS
for round in $(seq 1 "$ROUNDS"); do
  for place in inside outside; do
    dir=$WATCHED/run; [ $place = outside ] && dir=$OUTSIDE/run
    declare -A TIME
    for m in "${MONITORS[@]}"; do
      start_monitor "$m"
      rm -rf "$dir"; mkdir -p "$dir"
      TIME[$m]=$("$WORKLOAD" "$dir" "$OPS" | cut -d' ' -f1)
      stop_monitor
    done
    for m in "${MONITORS[@]}"; do
      RATIOS[$m,$place]+="$(awk -v a="${TIME[$m]}" -v b="${TIME[none]}" 'BEGIN {printf "%.4f", a / b}') "
    done
    echo "bench: round $round $place: $(for m in "${MONITORS[@]}"; do printf '%s %.1fms  ' "$m" "$(echo "${TIME[$m]} / 1000000" | bc -l)"; done)" >&2
  done
done

echo "bench: burst of $BURST_OPS ops inside" >&2
declare -A BURST
for m in "${MONITORS[@]}"; do
  [ "$m" = none ] && continue
  # The directories exist before the monitor starts: this measures the steady state,
  # not the window before a new directory is watched (see docs/backends.md).
  rm -rf "$WATCHED/burst"; mkdir -p "$WATCHED/burst/a/b/c/d/e"
  start_monitor "$m"
  expected_ops=$("$WORKLOAD" "$WATCHED/burst" "$BURST_OPS" | cut -d' ' -f2)
  wait_quiet "$m"
  ticks=$(cpu_ticks "$MONITOR_PID")
  pid=$MONITOR_PID
  stop_monitor
  captured=$("count_$m" "$m")
  per_iteration=${PER_ITERATION[$m]:-}
  lost=n/a
  if [ "$m" = fstrail-fanotify ]; then
    lost=$(sed -n 's/.* \([0-9]*\) lost.*/\1/p' "$OUT/$m.err" | tail -1)
  fi
  if [ -n "$per_iteration" ]; then
    expected=$((expected_ops / 7 * per_iteration))
    [ "$lost" = n/a ] && covered=$captured || covered=$((captured + lost))
    completeness=$(awk -v c="$covered" -v e="$expected" 'BEGIN {printf "%.3f", c / e}')
  else
    expected="n/a"; completeness="n/a (coalesces open/write/close per file; no loss count)"
  fi
  hz=$(getconf CLK_TCK)
  cpu_ms_per_1000=$(awk -v t="$ticks" -v hz="$hz" -v n="$captured" 'BEGIN {printf "%.2f", (n ? t * 1000 / hz / n * 1000 : 0)}')
  BURST[$m]="| $m | $captured | $expected | $lost | $completeness | $cpu_ms_per_1000 |"
  echo "bench: burst $m: captured $captured expected $expected lost $lost cpu ${cpu_ms_per_1000}ms/1000" >&2
done

mkdir -p bench/results
{
  echo "# Watch benchmark"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) cores, $(stat -f -c %T "$WORK") at $WORK. Other jobs were running on"
  echo "the machine: ratios of each round to the no-monitor run of the same round, medians over $ROUNDS rounds."
  echo "Workload (bench/watch_workload.cc): create + 4 KiB write + close, chmod, rename, unlink, mkdir/rmdir at"
  echo "depth 5, fresh names each iteration; $OPS ops per run."
  echo "'outside' is the same workload in a sibling of the watched tree on the same filesystem."
  echo
  echo "| monitor | inside (x baseline) | outside (x baseline) | notes |"
  echo "| --- | --- | --- | --- |"
  for m in "${MONITORS[@]}"; do
    note=""
    [ "$m" = none ] && note="baseline"
    [ "$m" = fstrail-fanotify ] && note="per-directory inode marks, --json to a tmpfs file"
    [ "$m" = inotifywait ] && note="inotifywait -mr, 7 event types"
    [ "$m" = fatrace ] && note="whole filesystem (fatrace -c): cannot watch only a tree"
    printf '| %s | %.3f | %.3f | %s |\n' "$m" "$(echo ${RATIOS[$m,inside]} | tr ' ' '\n' | median)" \
      "$(echo ${RATIOS[$m,outside]} | tr ' ' '\n' | median)" "$note"
  done
  echo
  echo "Burst: $BURST_OPS ops inside the tree as fast as one process can make them."
  echo "Expected = what the monitor should print by its own definition; completeness = (captured + counted lost) / expected."
  echo "CPU = monitor utime+stime (/proc/PID/stat) over its whole run, per 1000 events printed."
  echo
  echo "| monitor | captured | expected | counted lost | completeness | CPU ms / 1000 events |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for m in "${MONITORS[@]}"; do [ "$m" = none ] || echo "${BURST[$m]}"; done
} >bench/results/watch.md
cat bench/results/watch.md
