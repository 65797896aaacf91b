#!/bin/bash
# What bpf-lsm and bpf-fentry cost the processes they watch, measured in the QEMU VM
# (the only place they load here): `fstrail_watch_workload ops` with no monitor, with each
# backend, and with bpf-lsm watching 1, 100 and 10 000 roots (the in-kernel filter is
# one hash lookup per path level, so the cost should not depend on the root count).
#   bench/vm_bench.sh [BUILD_DIR] [ITERATIONS]      (VMTEST_SUITE=bookworm for Linux 6.1)
# BENCH_BACKENDS (default "bpf-lsm bpf-fentry") and BENCH_ROOTS ("1 100 10000") pick parts;
# BENCH_ROUNDS (5) alternating rounds for the root counts.
# The VM is emulated (TCG): absolute times are slow, ratios are what to read.
set -euo pipefail
if [ "${1:-}" != --in-vm ]; then
	cd "$(dirname "$0")/.."
	build=$(realpath "${1:-build}")
	exec tools/vmtest.sh "$PWD" bench/vm_bench.sh --in-vm "$build" "${2:-3000}" \
		"${BENCH_BACKENDS-bpf-lsm bpf-fentry}" "${BENCH_ROOTS-1 100 10000}" "${BENCH_ROUNDS:-5}"
fi
build=$2 iterations=$3 backends=$4 root_counts=$5 rounds=$6
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
# The root count, by the time the kernel spends in fstrail's BPF programs (bpf_stats:
# run_time_ns of every program the agent holds, from /proc/PID/fdinfo) per workload
# iteration. That isolates what the root count can change from the rest of the
# emulated machine's noise; the counts alternate within each round, medians over rounds.
bpf_ns() {	# total run_time_ns of the BPF programs fstrail holds
	awk '/^run_time_ns:/ {s += $2} END {print s + 0}' /proc/$watcher/fdinfo/* 2>/dev/null
}
[ -n "$root_counts" ] || exit 0
sysctl -qw kernel.bpf_stats_enabled=1
for n in $root_counts; do
	[ "$n" -gt 1 ] && mkdir -p $(eval echo "$base/roots/r{2..$n}")
done
counts=($root_counts)
for round in $(seq "$rounds"); do
	# each round starts at the next count, so no count always runs first
	shift_by=$(( (round - 1) % ${#counts[@]} ))
	for n in "${counts[@]:shift_by}" "${counts[@]:0:shift_by}"; do
		others=()
		[ "$n" -gt 1 ] && others=($(eval echo "$base/roots/r{2..$n}"))
		start_fstrail bpf-lsm $base/watched "${others[@]}"
		before=$(bpf_ns)
		out=$($bench $base/watched/w "$iterations")
		after=$(bpf_ns)
		create=$(awk '/^create/ {print $2}' <<<"$out") syscall=$(awk '/^getppid/ {print $2}' <<<"$out")
		echo "roots round $round: $n roots: BPF $(( (after - before) / iterations )) ns per iteration, create cycle $create ns, getppid $syscall ns"
		stop_fstrail >/dev/null
	done
done | tee $base/roots.log
# The emulated CPU's speed follows the host's load from second to second: each
# measurement's BPF time is also divided by its own getppid time (no hook runs there),
# and the least disturbed (fastest) measurement of each count is shown too.
echo "roots over $rounds rounds: BPF ns per iteration of all six operations (fastest, median); ratio to 1 root: of the medians, and median of per-round ratios of BPF/getppid"
awk '/^roots round/ {r = $3 + 0; n = $4; bpf[n, r] = $7; cal[n, r] = $7 / $16; counts[n] = 1; rounds[r] = 1}
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		for (n in counts) {
			ns = ratio = ""; fastest = 0
			for (r in rounds) {
				ns = ns " " bpf[n, r]; ratio = ratio " " cal[n, r] / cal[1, r]
				if (!fastest || bpf[n, r] < fastest) fastest = bpf[n, r]
			}
			med[n] = median(ns)
			line[n] = sprintf("fastest %8.0f ns  median %8.0f ns", fastest, med[n])
			norm[n] = median(ratio)
		}
		for (n in counts)
			printf "roots %6d  %s  ratio %.3f  normalized ratio %.3f\n", n, line[n], med[n] / med[1], norm[n]
	}' $base/roots.log | sort -k2 -n
