#!/usr/bin/env bash
# `make sanitize`: builds vitrine and its tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (clang, -O1) and runs the test suite under them
# (docs/reliability.md). Fails on the first sanitizer finding or test failure.
#
#   scripts/sanitize.sh                     every test but SAN_EXCLUDE's
#   SAN_EXCLUDE='' scripts/sanitize.sh      every test
#   SAN_EXCLUDE=regex scripts/sanitize.sh   leave out tests matching regex
#   JOBS=n                                  build and ctest parallelism (default nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizers/env.sh
JOBS=${JOBS:-$(nproc)}
# Left out by default, one reason each (docs/reliability.md):
#   HnswlibPeer.*  the benchmark's hnswlib peer. hnswlib 0.6.2 (Debian's
#                  libhnswlib-dev) reads one link id past a full neighbour
#                  list to compute a prefetch address (hnswalg.h:214,
#                  searchBaseLayer): a 4-byte heap over-read that ASan reports
#                  and no result depends on. Third-party, benchmark-only.
#   TuneTest.*     about 20 full bundle builds through the CLI: minutes under
#                  ASan, over code (build, evaluate) other tests run there.
#   EmbedOnGeneratorData.*, VisualQuality.*
#                  quality checks (neighbours on generated data, accuracy on
#                  a Fashion-MNIST subset): the slowest tests under ASan
#                  (49 s, 26 s, 18 s) over ALS and encoder code that
#                  als_test, visual_encoder_test and the CLI tests run there.
#   MpiTest.*      mpirun and OpenMPI under LeakSanitizer: OpenMPI keeps
#                  allocations to exit by design, which LSan reports; the
#                  ALS solver those runs use is the one als_test checks.
SAN_EXCLUDE=${SAN_EXCLUDE-'^(HnswlibPeer|TuneTest|EmbedOnGeneratorData|VisualQuality|MpiTest)\.'}

bash scripts/install-deps.sh --sanitize

t0=$(date +%s)
san_configure
cmake --build "$SAN_BUILD_DIR" -j "$JOBS"
t1=$(date +%s)

exclude=()
if [ -n "$SAN_EXCLUDE" ]; then exclude=(-E "$SAN_EXCLUDE"); fi
log="$SAN_BUILD_DIR/sanitize-ctest.log"
rc=0
(cd "$SAN_BUILD_DIR" && ctest --output-on-failure -j "$JOBS" "${exclude[@]}") 2>&1 | tee "$log" ||
  rc=$?
t2=$(date +%s)

summary=$(grep -E 'tests passed|tests failed' "$log" | tail -1 || true)
echo "sanitize: ASan+UBSan build $((t1 - t0)) s, tests $((t2 - t1)) s (wall), ${summary:-no ctest summary}" \
  "${SAN_EXCLUDE:+(excluded: $SAN_EXCLUDE)}"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
  echo "sanitize: sanitizer findings in $log" >&2
  rc=1
fi
exit "$rc"
