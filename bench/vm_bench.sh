#!/bin/bash
# What bpf-lsm and bpf-fentry cost the processes they watch, measured in the QEMU VM
# (the only place they load here): `fstrail_watch_workload ops` with no monitor, with each
# backend, and with bpf-lsm watching 1, 100 and 10 000 roots (the in-kernel filter is
# one hash lookup per path level, so the cost should not depend on the root count).
#   bench/vm_bench.sh [BUILD_DIR] [ITERATIONS]      (VMTEST_SUITE=bookworm for Linux 6.1)
# BENCH_BACKENDS (default "bpf-lsm bpf-fentry") and BENCH_ROOTS ("1 100 10000") pick parts.
# The VM is emulated (TCG): absolute times are slow, ratios are what to read.
set -euo pipefail
if [ "${1:-}" != --in-vm ]; then
	cd "$(dirname "$0")/.."
	build=$(realpath "${1:-build}")
	exec tools/vmtest.sh "$PWD" bench/vm_bench.sh --in-vm "$build" "${2:-3000}" \
		"${BENCH_BACKENDS-bpf-lsm bpf-fentry}" "${BENCH_ROOTS-1 100 10000}"
fi
build=$2 iterations=$3 backends=$4 root_counts=$5
bench="$build/bench/fstrail_watch_workload ops" fstrail=$build/fstrail
base=/tmp/fstrail-bench
rm -rf $base && mkdir -p $base/watched/w $base/roots
watcher=

start_fstrail() {	# BACKEND ROOT...
	local backend=$1
	shift
	"$fstrail" watch --backend "$backend" --json -o /dev/null "$@" 2>$base/stderr &
	watcher=$!
	for _ in $(seq 600); do
		grep -q watching $base/stderr && return 0
		kill -0 $watcher 2>/dev/null || break
		sleep 0.1
	done
	echo "fstrail did not start: $(cat $base/stderr)" >&2
	exit 1
}
stop_fstrail() { kill -INT $watcher; wait $watcher || true; grep -h "events" $base/stderr | sed 's/^/    /'; }
measure() {	# LABEL: prints the benchmark's lines prefixed by LABEL
	$bench $base/watched/w "$iterations" | sed "s/^/$1 | /"
}

echo "kernel $(uname -r), $iterations iterations per operation"
measure "no monitor      "
for backend in $backends; do
	start_fstrail $backend $base/watched
	measure "$(printf '%-16s' $backend)"
	stop_fstrail
done
for roots in $root_counts; do
	others=()
	[ "$roots" -gt 1 ] && others=($(eval echo "$base/roots/r{2..$roots}")) && mkdir -p "${others[@]}"
	start_fstrail bpf-lsm $base/watched "${others[@]}"
	measure "$(printf 'lsm %5d roots ' $roots)"
	stop_fstrail
done
