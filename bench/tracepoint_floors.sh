#!/bin/bash
# The floors of the bpf-tracepoint mechanism, in the same run as fstrail and the
# no-monitor baseline: what the targets are measured against.
#   bench/tracepoint_floors.sh BUILD      (root)
# Monitors, alternating within each round (bench/run.sh):
#   none                     no monitor
#   fstrail-bpf-tracepoint   fstrail watch --backend bpf-tracepoint --json -o FILE
#   tracepoint-dispatchers   FSTRAIL_BENCH_TRACEPOINT_FLOOR=dispatchers: only the two
#                            raw_syscalls dispatchers attached, no syscall routed to a program
#                            (what every syscall on the machine pays for the mechanism)
#   tracepoint-drop          FSTRAIL_BENCH_TRACEPOINT_FLOOR=drop: every program attached,
#                            user space consumes the ring and drops each record unread
#                            (the in-kernel half of the cost, with nothing done in user space)
#   tracepoint-kernel-path   one empty bpftrace program on sys_enter_getppid, a syscall the
#                            workload never makes: the kernel's syscall-tracing path alone,
#                            which every syscall pays once any syscall tracepoint is enabled
# Also the burst and the latency of fstrail itself. Results: bench/results/tracepoint-floors.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export RESULTS=${RESULTS:-bench/results/tracepoint-floors.md}
export MONITORS=${MONITORS:-none fstrail-bpf-tracepoint tracepoint-kernel-path tracepoint-dispatchers tracepoint-drop}
exec bench/run.sh "${1:-build}"
