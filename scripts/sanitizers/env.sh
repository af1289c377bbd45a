# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: build directories,
# configure commands and sanitizer runtime options (docs/reliability.md).
#
#   build-asan/  gcc, -DVITRINE_SANITIZE=ON: the test suite under ASan + UBSan
#   build-fuzz/  clang 14, -DVITRINE_FUZZ=ON: the libFuzzer harnesses (every
#                library instrumented for coverage, ASan + UBSan included)
# Two directories because the test suite needs GCC (the hnswlib benchmark
# peer uses GCC's target pragma) and libFuzzer needs clang.

SAN_BUILD_DIR=${SAN_BUILD_DIR:-build-asan}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
SAN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_launcher() {
  if command -v ccache >/dev/null 2>&1; then echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
}

# Debug keeps assert() on; VITRINE_SANITIZE adds -O1 -g on top. Benchmarks
# are not built: they are not tests.
san_configure() {
  cmake -S . -B "$SAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ \
    -DVITRINE_SANITIZE=ON -DVITRINE_BUILD_BENCH=OFF $(_launcher) >/dev/null
}
fuzz_configure() {
  cmake -S . -B "$FUZZ_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
    -DVITRINE_FUZZ=ON -DVITRINE_BUILD_BENCH=OFF $(_launcher) >/dev/null
}

# halt_on_error / abort_on_error: the first finding fails the run.
# detect_leaks: LeakSanitizer too, with the suppressions in lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-"halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1"}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-"halt_on_error=1:abort_on_error=1:print_stacktrace=1:suppressions=$SAN_DIR/ubsan.supp"}
export LSAN_OPTIONS=${LSAN_OPTIONS:-"suppressions=$SAN_DIR/lsan.supp:print_suppressions=0"}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
fi
# Passive OpenMP waiting, as the tests' ctest properties set: spinning workers
# starve each other on 2 cores, and under ASan the spin is slower still.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
