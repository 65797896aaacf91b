#!/bin/bash
# The watch benchmark: every monitor in the same run. How much each slows a workload
# inside and outside the tree it watches, whether it keeps up with a burst from two
# processes, what it costs in CPU, and (fstrail) how long an event takes to reach its output.
#   bench/run.sh BUILD            (root: fanotify, BPF, audit)
# Monitors alternate within each round so that noise from other load on the machine
# hits all of them alike; the table shows medians over the rounds of each monitor's
# time divided by the no-monitor time of the same round. Results: bench/results/watch.md.
# Another monitor is one more monitor_NAME function (start it on $WATCHED, writing to
# $OUT/NAME.out, set MONITOR_PID) plus its name in MONITORS, and a count_NAME for the burst.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-70000}            # per timed run
BURST_OPS=${BURST_OPS:-200000}
BURST_PROCESSES=${BURST_PROCESSES:-2}
LATENCY_SAMPLES=${LATENCY_SAMPLES:-2000}
RESULTS=${RESULTS:-bench/results/watch.md}
MONITORS=(${MONITORS:-none fstrail-bpf-tracepoint fstrail-fanotify inotifywait fatrace auditd bpftrace fswatch})
FSTRAIL=$BUILD/fstrail
WORKLOAD=$BUILD/bench/fstrail_watch_workload
[ "$(id -u)" = 0 ] || { echo "bench: needs root (fanotify, BPF, audit)" >&2; exit 1; }
[ -x "$FSTRAIL" ] && [ -x "$WORKLOAD" ] || { echo "bench: build first: make build" >&2; exit 1; }
for m in "${MONITORS[@]}"; do
  case $m in
    inotifywait|fatrace|bpftrace|fswatch) command -v "$m" >/dev/null || { echo "bench: $m is not installed (scripts/install-deps.sh)" >&2; exit 1; } ;;
    auditd) command -v auditd >/dev/null && command -v auditctl >/dev/null || { echo "bench: auditd is not installed" >&2; exit 1; } ;;
  esac
done
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing

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
AUDIT_KEY=fstrail-bench
AUDIT_WAS_ENABLED=$(auditctl -s 2>/dev/null | awk '$1 == "enabled" {print $2}')
cleanup() {
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null || true
  if [[ " ${MONITORS[*]} " == *" auditd "* ]]; then
    auditctl -W "$WATCHED" -p wa -k "$AUDIT_KEY" >/dev/null 2>&1 || true
    auditctl -e "${AUDIT_WAS_ENABLED:-0}" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT

# --- monitors: each starts in the background writing to $OUT/NAME.out and sets MONITOR_PID
monitor_none() { MONITOR_PID=; }
monitor_fstrail-fanotify() {
  "$FSTRAIL" watch --backend fanotify --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
monitor_fstrail-bpf-tracepoint() {
  "$FSTRAIL" watch --backend bpf-tracepoint --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# bpf-tracepoint's string mode (the plain monitor is `auto`: kernel-read mode where
# tracepoint programs may read kernel memory), so both modes run in the same rounds.
monitor_fstrail-bpf-tracepoint-strings() {
  "$FSTRAIL" watch --backend bpf-tracepoint --tracepoint-mode strings --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# Another fstrail binary (FSTRAIL_BASELINE=PATH, say one built from main) in the same
# rounds: before/after comparisons alternate within each round like every monitor.
monitor_fstrail-bpf-tracepoint-baseline() {
  "${FSTRAIL_BASELINE:?FSTRAIL_BASELINE=PATH of the other fstrail binary}" watch --backend bpf-tracepoint --json \
    -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# The floors of the bpf-tracepoint mechanism (bench/tracepoint_floors.sh; not in the
# default list): the raw_syscalls dispatchers alone, or every program with user space
# dropping the records unread. They print no events: ready once fstrail says it watches.
monitor_tracepoint-dispatchers() {
  FSTRAIL_BENCH_TRACEPOINT_FLOOR=dispatchers "$FSTRAIL" watch --backend bpf-tracepoint --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
monitor_tracepoint-drop() {
  FSTRAIL_BENCH_TRACEPOINT_FLOOR=drop "$FSTRAIL" watch --backend bpf-tracepoint --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# Below both: one empty program on the tracepoint of a syscall the workload never makes.
# Enabling any syscall tracepoint sends every syscall of every process through the
# kernel's tracing path: what any syscall-tracepoint monitor costs before it runs a program.
monitor_tracepoint-kernel-path() {
  bpftrace -o "$OUT/$1.out" -e 'tracepoint:syscalls:sys_enter_getppid { @calls = count(); }' 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
monitor_fstrail-inotify() {
  "$FSTRAIL" watch --backend inotify --json -o "$OUT/$1.out" "$WATCHED" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# The price of the mark alone: a reader that drops every event, on a filesystem mark
# or on per-directory marks (what fstrail uses). Not in the default list.
monitor_fs-mark-reader() {
  "$BUILD/bench/fstrail_fanotify_mark_cost" filesystem "$WATCHED" >"$OUT/$1.out" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
monitor_dir-marks-reader() {
  "$BUILD/bench/fstrail_fanotify_mark_cost" directories "$WATCHED" >"$OUT/$1.out" 2>"$OUT/$1.err" &
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
monitor_fswatch() {  # -r on Linux: one inotify watch per directory
  fswatch -r -m inotify_monitor -x --event Created --event Updated --event Removed --event Renamed \
    --event AttributeModified "$WATCHED" >"$OUT/$1.out" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}
# auditd with its own configuration (log in $OUT, never rotated away mid-burst) and
# the rule a user would write: writes and attribute changes under the tree. No systemd
# here: auditd runs in the foreground (-n); the rule goes when the monitor stops.
monitor_auditd() {
  mkdir -p "$OUT/auditd-conf"
  sed -e "s|^log_file *=.*|log_file = $OUT/$1.out|" -e 's|^max_log_file_action *=.*|max_log_file_action = IGNORE|' \
    /etc/audit/auditd.conf >"$OUT/auditd-conf/auditd.conf"
  chmod 0640 "$OUT/auditd-conf/auditd.conf"
  auditd -n -c "$OUT/auditd-conf" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
  auditctl -b 8192 >/dev/null  # what Debian's audit.rules sets
  auditctl -e 1 >/dev/null
  auditctl -w "$WATCHED" -p wa -k "$AUDIT_KEY" >/dev/null
}
stop_auditd() {
  auditctl -W "$WATCHED" -p wa -k "$AUDIT_KEY" >/dev/null
  auditctl -e "${AUDIT_WAS_ENABLED:-0}" >/dev/null
}
audit_lost() { auditctl -s | awk '$1 == "lost" {print $2}'; }
# A bpftrace script as a user would write it: the syscalls that change files, filtered by
# path prefix, attributed by comm/pid/uid. x86-64 glibc calls rename/unlink/mkdir/rmdir/
# chmod/chown themselves (not the *at forms), so both forms are traced.
monitor_bpftrace() {
  local spec tp field filter script=""
  for spec in openat:filename unlinkat:pathname renameat2:oldname mkdirat:pathname fchmodat:filename \
              fchownat:filename rename:oldname unlink:pathname mkdir:pathname rmdir:pathname chmod:filename \
              chown:filename; do
    tp=${spec%%:*}; field=${spec#*:}
    filter="strncmp(str(args->$field), \"$WATCHED\", ${#WATCHED}) == 0"
    [ "$tp" = openat ] && filter+=" && (args->flags & 0x43)"  # O_WRONLY|O_RDWR|O_CREAT
    script+="tracepoint:syscalls:sys_enter_$tp /$filter/ { printf(\"$tp %s %d %d %s\\n\", comm, pid, uid, str(args->$field)); }"$'\n'
  done
  printf '%s' "$script" >"$OUT/bpftrace.bt"
  BPFTRACE_STRLEN=200 bpftrace -o "$OUT/$1.out" "$OUT/bpftrace.bt" 2>"$OUT/$1.err" &
  MONITOR_PID=$!
}

# Events each monitor printed for the burst directory (monitors without one skip the burst).
count_lines() { grep -c "$WATCHED/burst" || true; }
count_fstrail-fanotify() { count_lines; }
count_fstrail-bpf-tracepoint() { count_lines; }
count_fstrail-bpf-tracepoint-baseline() { count_lines; }
count_fstrail-bpf-tracepoint-strings() { count_lines; }
count_fstrail-inotify() { count_lines; }
count_inotifywait() { count_lines; }
count_fatrace() { count_lines; }
count_fswatch() { count_lines; }
count_bpftrace() { count_lines; }
count_auditd() { grep -c "type=SYSCALL.*key=\"$AUDIT_KEY\"" || true; }
# What each monitor, by its own definition, should print per workload iteration.
declare -A PER_ITERATION=(
  [fstrail-fanotify]=7         # create modify chmod rename delete mkdir rmdir
  [fstrail-bpf-tracepoint]=7
  [fstrail-bpf-tracepoint-baseline]=7
  [fstrail-bpf-tracepoint-strings]=7
  [fstrail-inotify]=7
  [inotifywait]=9              # + MODIFY and CLOSE_WRITE apart, MOVED_FROM and MOVED_TO apart
  [auditd]=6                   # open(O_CREAT) chmod rename unlink mkdir rmdir (write() is not audited)
  [bpftrace]=6                 # the same six syscalls
)
start_monitor() {  # NAME: starts it and waits until it reports a probe file
  rm -f "$OUT/$1.out" "$OUT/$1.err"
  "monitor_$1" "$1"
  [ -z "$MONITOR_PID" ] && return
  if [[ "$1" == tracepoint-* ]]; then  # floors print no events
    for i in $(seq 1 300); do
      grep -q "fstrail: watching\|^Attaching" "$OUT/$1.err" "$OUT/$1.out" 2>/dev/null && return
      sleep 0.1
    done
    echo "bench: monitor $1 did not start" >&2; cat "$OUT/$1.err" >&2 2>/dev/null; exit 1
  fi
  for i in $(seq 1 300); do  # bpftrace compiles its script first: seconds
    local probe="$WATCHED/ready-$RANDOM"
    echo x >"$probe"; rm -f "$probe"
    if grep -q "ready-" "$OUT/$1.out" 2>/dev/null; then return; fi  # any probe: output may be buffered
    sleep 0.1
  done
  echo "bench: monitor $1 did not start" >&2; cat "$OUT/$1.err" >&2 2>/dev/null; exit 1
}
stop_monitor() {  # NAME
  [ -z "$MONITOR_PID" ] && return
  [ -n "$(type -t "stop_$1")" ] && "stop_$1"
  # SIGINT first (fstrail prints its summary; detaching BPF programs takes ~2 s);
  # background jobs of a script ignore it, so then SIGTERM.
  kill -INT "$MONITOR_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$MONITOR_PID" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$MONITOR_PID" 2>/dev/null || true
  wait "$MONITOR_PID" 2>/dev/null || true; MONITOR_PID=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
out_size() { stat -c %s "$OUT/$1.out" 2>/dev/null || echo 0; }
wait_quiet() {  # until the monitor's output stops growing for 1 s (at most 60 s)
  local last=-1 size
  for _ in $(seq 1 60); do
    size=$(out_size "$1")
    [ "$size" = "$last" ] && return
    last=$size; sleep 1
  done
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }

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
      stop_monitor "$m"
    done
    for m in "${MONITORS[@]}"; do RATIOS[$m,$place]+="$(ratio "${TIME[$m]}" "${TIME[none]}") "; done
    echo "bench: round $round $place: $(for m in "${MONITORS[@]}"; do printf '%s %.1fms  ' "$m" "$(echo "${TIME[$m]} / 1000000" | bc -l)"; done)" >&2
  done
done

echo "bench: burst of $BURST_OPS ops inside from $BURST_PROCESSES processes" >&2
declare -A BURST
for m in "${MONITORS[@]}"; do
  # The directories exist before the monitor starts: this measures the steady state,
  # not the window before a new directory is watched (see docs/backends.md).
  rm -rf "$WATCHED/burst"; mkdir -p "$WATCHED/burst/a/b/c/d/e"
  start_monitor "$m"
  if [ "$m" != none ] && [ -z "$(type -t "count_$m")" ]; then stop_monitor "$m"; continue; fi  # a mark-cost reader prints no events
  [ "$m" = auditd ] && audit_lost_before=$(audit_lost)
  sleep 1; offset=$(out_size "$m")  # only what the burst makes is counted, not the readiness probes
  [ -n "$MONITOR_PID" ] && ticks_before=$(cpu_ticks "$MONITOR_PID")
  read -r burst_ns expected_ops < <("$WORKLOAD" "$WATCHED/burst" "$BURST_OPS" "$BURST_PROCESSES")
  if [ "$m" = none ]; then BURST_NONE_NS=$burst_ns; continue; fi
  wait_quiet "$m"
  ticks=$(cpu_ticks "$MONITOR_PID")
  lost=n/a
  [ "$m" = auditd ] && lost=$(( $(audit_lost) - audit_lost_before ))
  stop_monitor "$m"
  captured=$(tail -c +$((offset + 1)) "$OUT/$m.out" | "count_$m")
  per_iteration=${PER_ITERATION[$m]:-}
  [[ "$m" == fstrail-* ]] && lost=$(sed -n 's/.* \([0-9]*\) lost.*/\1/p' "$OUT/$m.err" | tail -1)
  [ "$m" = bpftrace ] && lost=$(cat "$OUT/$m.out" "$OUT/$m.err" | awk '/Lost [0-9]+ events/ {for (i = 1; i < NF; i++) if ($i == "Lost") n += $(i + 1)} END {print n + 0}')
  if [ -n "$per_iteration" ]; then
    expected=$((expected_ops / 7 * per_iteration))
    [ "$lost" = n/a ] && covered=$captured || covered=$((captured + lost))
    completeness=$(awk -v c="$covered" -v e="$expected" 'BEGIN {printf "%.3f", c / e}')
  elif [ "$captured" = 0 ]; then
    expected="n/a"; completeness="0: reported none of the burst"
  else
    expected="n/a"; completeness="n/a (coalesces events; no loss count)"
  fi
  hz=$(getconf CLK_TCK)
  per_1000() { awk -v t="$1" -v hz="$hz" -v n="$captured" 'BEGIN {if (n) printf "%.2f", t * 1000 / hz / n * 1000; else print "n/a"}'; }
  cpu_ms_per_1000=$(per_1000 "$ticks")
  burst_cpu_ms_per_1000=$(per_1000 "$((ticks - ticks_before))")
  BURST[$m]="| $m | $(ratio "$burst_ns" "$BURST_NONE_NS") | $captured | $expected | $lost | $completeness | $cpu_ms_per_1000 | $burst_cpu_ms_per_1000 |"
  echo "bench: burst $m: wall $(ratio "$burst_ns" "$BURST_NONE_NS")x captured $captured expected $expected lost $lost cpu ${cpu_ms_per_1000}ms/1000 (burst only ${burst_cpu_ms_per_1000})" >&2
done

# Event -> output latency: fstrail's JSON on a pipe read by the probe, one sample every 2 ms.
declare -A LATENCY=()
for m in "${MONITORS[@]}"; do
  [[ "$m" == fstrail-* ]] || continue
  rm -rf "$WATCHED/latency"; mkdir -p "$WATCHED/latency"
  rm -f "$OUT/latency.pipe"; mkfifo "$OUT/latency.pipe"
  binary=$FSTRAIL; backend=${m#fstrail-}
  [[ "$m" == *-baseline ]] && binary=$FSTRAIL_BASELINE && backend=${backend%-baseline}
  mode=()
  [[ "$m" == *-strings ]] && backend=${backend%-strings} && mode=(--tracepoint-mode strings)
  "$binary" watch --backend "$backend" "${mode[@]}" --json "$WATCHED" >"$OUT/latency.pipe" 2>"$OUT/$m.latency.err" &
  fstrail_pid=$!
  if read -r p50 p99 seen missed < <("$WORKLOAD" latency "$WATCHED/latency" "$LATENCY_SAMPLES" <"$OUT/latency.pipe"); then
    LATENCY[$m]="| $m | $p50 | $p99 | $seen | $missed |"
    echo "bench: latency $m: p50 ${p50}us p99 ${p99}us ($seen samples, $missed missed)" >&2
  else
    LATENCY[$m]="| $m | failed | | | |"
  fi
  kill -INT "$fstrail_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$fstrail_pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$fstrail_pid" 2>/dev/null || true; wait "$fstrail_pid" 2>/dev/null || true
done

note_for() {
  case $1 in
    none) echo "baseline" ;;
    fstrail-fanotify) echo "per-directory inode marks, --json to a file" ;;
    fstrail-bpf-tracepoint) echo "syscall tracepoints, auto mode (kernel-read where it loads), --json to a file" ;;
    fstrail-bpf-tracepoint-strings) echo "syscall tracepoints, --tracepoint-mode strings (path-prefix filter on syscall strings)" ;;
    fstrail-bpf-tracepoint-baseline) echo "the same, binary \$FSTRAIL_BASELINE ($FSTRAIL_BASELINE)" ;;
    fstrail-inotify) echo "inotify backend, --json to a file" ;;
    inotifywait) echo "inotifywait -mr, 7 event types; no attribution" ;;
    fatrace) echo "whole filesystem (fatrace -c): cannot watch only a tree" ;;
    auditd) echo "auditctl -w DIR -p wa, auditd -n logging to a file (backlog 8192)" ;;
    bpftrace) echo "sys_enter tracepoints of 12 syscalls, strncmp path prefix, printf comm/pid/uid/path" ;;
    fswatch) echo "fswatch -r -m inotify_monitor -x, 5 event types; no attribution (see its burst row)" ;;
    fs-mark-reader) echo "FAN_MARK_FILESYSTEM, events read and dropped (bench/fanotify_mark_cost.cc)" ;;
    dir-marks-reader) echo "per-directory inode marks, events read and dropped" ;;
    tracepoint-dispatchers) echo "bpf-tracepoint floor: the two raw_syscalls dispatchers alone, nothing routed" ;;
    tracepoint-drop) echo "bpf-tracepoint floor: every program attached, user space drops the records unread" ;;
    tracepoint-kernel-path) echo "below every syscall-tracepoint monitor: one empty program on sys_enter_getppid (bpftrace), no program on the workload's syscalls" ;;
  esac
}

mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Watch benchmark"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) cores, $(stat -f -c %T "$WORK") at $WORK, load average"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: other jobs may have run). Ratios of each"
  echo "round to the no-monitor run of the same round, medians over $ROUNDS rounds."
  echo "Workload (bench/watch_workload.cc): create + 4 KiB write + close, chmod, rename, unlink, mkdir/rmdir at"
  echo "depth 5, fresh names each iteration; $OPS ops per run, one process."
  echo "'outside' is the same workload in a sibling of the watched tree on the same filesystem."
  echo
  echo "| monitor | inside (x baseline) | outside (x baseline) | notes |"
  echo "| --- | --- | --- | --- |"
  for m in "${MONITORS[@]}"; do
    printf '| %s | %.3f | %.3f | %s |\n' "$m" "$(echo ${RATIOS[$m,inside]} | tr ' ' '\n' | median)" \
      "$(echo ${RATIOS[$m,outside]} | tr ' ' '\n' | median)" "$(note_for "$m")"
  done
  echo
  echo "Burst: $BURST_OPS ops inside the tree from $BURST_PROCESSES processes at once, as fast as they can, one run."
  echo "Wall = burst time / no-monitor burst time. Expected = what the monitor should print by its own definition;"
  echo "completeness = (captured + counted lost) / expected. CPU = the monitor process's utime+stime"
  echo "(/proc/PID/stat) over its whole run, per 1000 events printed: kernel work done in the workload's context"
  echo "(BPF programs, audit record building, fanotify queueing) is not in it. 'Burst only': the same from just"
  echo "before the burst until its output stopped growing (without start-up: loading BPF programs, scanning the tree)."
  echo
  echo "| monitor | wall (x baseline) | captured | expected | counted lost | completeness | CPU ms / 1000 events | burst only |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for m in "${MONITORS[@]}"; do [ -z "${BURST[$m]:-}" ] || echo "${BURST[$m]}"; done
  if [ ${#LATENCY[@]} -gt 0 ]; then
    echo
    echo "Event -> output latency: a probe creates a file with a unique name and reads fstrail's --json stdout"
    echo "(a pipe) until the line naming it arrives; $LATENCY_SAMPLES samples, one every 2 ms, no other monitor running."
    echo
    echo "| monitor | p50 (us) | p99 (us) | samples | never seen (2 s) |"
    echo "| --- | --- | --- | --- | --- |"
    for m in "${MONITORS[@]}"; do [ -z "${LATENCY[$m]:-}" ] || echo "${LATENCY[$m]}"; done
  fi
} >"$RESULTS"
cat "$RESULTS"
