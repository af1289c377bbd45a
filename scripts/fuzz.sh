#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses (fuzz/, clang + ASan + UBSan)
# and runs each, one after the other, for FUZZ_SECONDS (default 60), starting
# from the checked-in seeds in fuzz/corpus/<harness>/ plus what earlier runs
# in this build directory found (docs/reliability.md). Prints per harness the
# executions, coverage (cov: edges, ft: features) and corpus size, and fails
# if any harness crashed; crash inputs are kept in
# $FUZZ_BUILD_DIR/fuzz-artifacts/<harness>/.
#
#   FUZZ_SECONDS=30 scripts/fuzz.sh              every harness, 30 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh rules_fuzzer   one harness, longer
#   FUZZ_FRESH=1                                   start from the seeds only
#   FUZZ_SEED=7                                    libFuzzer's -seed (default 0:
#                                                  a new random seed each run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizers/env.sh
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_FRESH=${FUZZ_FRESH:-0}
FUZZ_SEED=${FUZZ_SEED:-0}
ALL=(csv_fuzzer rules_fuzzer array_io_fuzzer image_fuzzer manifest_fuzzer http_fuzzer)
if [ $# -gt 0 ]; then HARNESSES=("$@"); else HARNESSES=("${ALL[@]}"); fi

# Longest input per harness: enough for the seeds and for every format's
# interesting structure, small enough to keep executions fast.
max_len() {
  case "$1" in
    image_fuzzer) echo 16384 ;;
    manifest_fuzzer) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

bash scripts/install-deps.sh --sanitize
fuzz_configure
cmake --build "$FUZZ_BUILD_DIR" -j "$JOBS" --target "${HARNESSES[@]}"

# libFuzzer replaces these for the harness run: leaks are checked by libFuzzer
# per input (-detect_leaks), and a finding must end the run with a crash file.
export ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1"

failed=()
printf '%-16s %10s %8s %7s %7s %7s %8s  %s\n' harness execs exec/s cov ft corpus seconds result \
  >"$FUZZ_BUILD_DIR/fuzz-summary.txt"
for h in "${HARNESSES[@]}"; do
  corpus="$FUZZ_BUILD_DIR/fuzz-corpus/$h"
  artifacts="$FUZZ_BUILD_DIR/fuzz-artifacts/$h"
  log="$FUZZ_BUILD_DIR/fuzz-logs/$h.log"
  if [ "$FUZZ_FRESH" = 1 ]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dict=()
  if [ -f "fuzz/dict/${h%_fuzzer}.dict" ]; then dict=(-dict="fuzz/dict/${h%_fuzzer}.dict"); fi
  seed_env=()
  if [ "$h" = manifest_fuzzer ]; then seed_env=(VITRINE_FUZZ_EMIT_SEED="$corpus/live-manifest.json"); fi
  echo "fuzz: $h for ${FUZZ_SECONDS} s (log $log)"
  start=$(date +%s)
  # Crash files of earlier runs stay in $artifacts; report only this run's.
  marker="$artifacts/.run-start"
  touch "$marker"
  rc=0
  env "${seed_env[@]}" "$FUZZ_BUILD_DIR/fuzz/$h" -max_total_time="$FUZZ_SECONDS" -seed="$FUZZ_SEED" \
    -max_len="$(max_len "$h")" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" "fuzz/corpus/${h%_fuzzer}" \
    >"$log" 2>&1 &
  pid=$!
  wait "$pid" || rc=$?
  # libFuzzer ends with _Exit, so the harness's scratch directory (and
  # libomp's registration file) outlive it: remove them by its pid.
  for tmp in /dev/shm /tmp; do
    rm -rf "$tmp"/vitrine-fuzz-*-"$pid" "$tmp/__KMP_REGISTERED_LIB_${pid}_0"
  done
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log" | tail -1)
  last=$(grep -a -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ -z "$execs" ]; then execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last"); fi
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="CRASH (exit $rc): $(find "$artifacts" -type f -newer "$marker" ! -name .run-start \
      -printf '%f ' | head -c 300)"
    failed+=("$h")
    grep -a -E 'ERROR: |runtime error:|vitrine fuzz:|SUMMARY:|Assertion|terminate called' "$log" | head -6 || true
  fi
  printf '%-16s %10s %8s %7s %7s %7s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "$secs" "$result" | tee -a "$FUZZ_BUILD_DIR/fuzz-summary.txt"
done

echo
cat "$FUZZ_BUILD_DIR/fuzz-summary.txt"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs in $FUZZ_BUILD_DIR/fuzz-artifacts/" >&2
  exit 1
fi
echo "fuzz: no crashes (${FUZZ_SECONDS} s per harness)"
