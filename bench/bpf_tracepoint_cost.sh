#!/bin/bash
# What bpf-tracepoint costs the processes it watches, inside and outside the
# watched tree. Root. Usage: bench/bpf_tracepoint_cost.sh [BUILD_DIR] [ITERATIONS]
set -euo pipefail
build=${1:-build}
n=${2:-200000}
base=$(mktemp -d /tmp/fstrail-bench.XXXXXX)
mkdir -p "$base/watched" "$base/outside"
trap 'kill -INT $pid 2>/dev/null || true; rm -rf "$base"' EXIT

run() { echo "== $1"; "$build/bench/fstrail_bench_fileops" "$2" "$n"; }

run "no fstrail, $base/outside" "$base/outside"
"$build/fstrail" watch --backend bpf-tracepoint --json "$base/watched" >"$base/events.jsonl" 2>"$base/stderr" &
pid=$!
until grep -q watching "$base/stderr"; do sleep 0.1; done
run "fstrail watching $base/watched; operations OUTSIDE the tree" "$base/outside"
run "fstrail watching $base/watched; operations INSIDE the tree" "$base/watched"
(cd "$base/outside" && run "fstrail watching; relative paths from a cwd outside" .)
kill -INT $pid; wait $pid || true
grep -v watching "$base/stderr" || true
echo "events written: $(wc -l <"$base/events.jsonl")"
