#!/bin/bash
# Runs inside the VM (tools/vmtest.sh): every VM-tier test binary against bpf-lsm and
# bpf-fentry (the guard suite, with in-kernel enforcement, against bpf-lsm: only it can
# deny), then the real-workload suite against both, then the backend-choice checks.
# Exit status: 0 iff everything passed.
#   run-in-vm.sh BUILD_DIR TEST_BINARY...   (each binary reads FSTRAIL_BACKEND, FSTRAIL_BIN)
set -u
build=$1
shift
export FSTRAIL_BIN=$build/fstrail
failed=()
echo "vm: kernel $(uname -r), LSMs $(cat /sys/kernel/security/lsm)"
for backend in bpf-lsm bpf-fentry; do
	for binary in "$@"; do
		[ "$(basename "$binary")" = fstrail_guard_tests ] && [ "$backend" != bpf-lsm ] && continue
		echo "== $backend: $(basename "$binary")"
		start=$SECONDS
		filter=()
		[ "$(basename "$binary")" = fstrail_vm_tests ] && filter=(--gtest_filter='SubtreeVmTest.*:FailedVmTest.*')
		# The watch suite's fanotify-only and inotify-only tests, as on the host.
		[ "$(basename "$binary")" = fstrail_integration_tests ] &&
			filter=(--gtest_filter='-FanotifyWatchTest.*:InotifyWatchTest.*')
		FSTRAIL_BACKEND=$backend "$binary" "${filter[@]}" || failed+=("$backend:$(basename "$binary")")
		echo "== $backend: $(basename "$binary") took $((SECONDS - start)) s"
	done
done
# The real-workload suite (tests/workloads): /usr/bin/python3, the guest shares the host's /usr.
workloads=$(dirname "$(readlink -f "$0")")/../workloads/real_workloads.py
for backend in bpf-lsm bpf-fentry; do
	echo "== $backend: real workloads"
	start=$SECONDS
	/usr/bin/python3 "$workloads" "$FSTRAIL_BIN" --backend "$backend" || failed+=("$backend:workloads")
	echo "== $backend: real workloads took $((SECONDS - start)) s"
done
echo "== backend choice"
"$build/tests/fstrail_vm_tests" --gtest_filter='BackendChoiceVmTest.*' || failed+=(backend-choice)
if [ ${#failed[@]} -gt 0 ]; then
	echo "vm: FAILED: ${failed[*]}"
	exit 1
fi
echo "vm: all passed on $(uname -r)"
