#!/bin/bash
# Runs every test tier: unit tests (also under ASan/UBSan), libFuzzer targets for a
# bounded time (fuzz/), host integration as root, and VM integration (bpf-lsm, bpf-fentry on stock Debian kernels). A tier
# that cannot run here fails with the reason; none is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ASAN_BUILD=${2:-build-asan}
FUZZ_BUILD=${3:-build-fuzz}

if [ "$(id -u)" != 0 ]; then
  echo "fstrail tests: the host and VM tiers need root (fanotify, eBPF, QEMU setup); run: sudo make test" >&2
  exit 1
fi

echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DFSTRAIL_SANITIZE=ON >/dev/null
cmake --build "$ASAN_BUILD" -j"$(nproc)" --target fstrail_unit_tests
ctest --test-dir "$ASAN_BUILD" -L unit --output-on-failure

echo "== fuzzing: each libFuzzer target for ${FUZZ_SECONDS:-30} s under ASan + UBSan (a crash fails)"
scripts/run-fuzz.sh "$FUZZ_BUILD"

echo "== every tier: unit, host integration, VM integration"
ctest --test-dir "$BUILD" --output-on-failure
