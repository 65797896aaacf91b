#!/bin/bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs each for a bounded
# time from its checked-in corpus (fuzz/corpus/TARGET). A crash, hang, leak or sanitizer report
# fails, and the input that caused it is kept and named.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS=(decoder guard_config spool_reader query_filter sinks)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S fuzz -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

for target in "${TARGETS[@]}"; do
  # New inputs go to a scratch directory: the checked-in corpus is only read.
  work=$(mktemp -d "/tmp/fstrail-fuzz-$target-XXXXXX")
  seeds=$(find "fuzz/corpus/$target" -type f | wc -l)
  if ! "$BUILD/fuzz_$target" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/" "$work" "fuzz/corpus/$target" >"$work/log" 2>&1; then
    tail -40 "$work/log"
    echo "fuzz_$target FAILED: the input is in $work (reproduce: $BUILD/fuzz_$target $work/crash-*)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  found=$(find "$work" -maxdepth 1 -type f ! -name log | wc -l)
  echo "fuzz_$target: ${SECONDS_EACH} s, $runs inputs run, corpus $seeds seeds (+$found new), no crash"
  rm -rf "$work"
done
