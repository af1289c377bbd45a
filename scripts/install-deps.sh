#!/usr/bin/env bash
# Installs vitrine's build, test and demo dependencies from Debian packages.
# Idempotent: packages already present are left alone, and apt-get runs only
# when something is missing. Nothing is fetched from anywhere but apt.
#
#   scripts/install-deps.sh              what `make demo` and `make test` need
#   scripts/install-deps.sh --sanitize   also the clang toolchain that
#                                        `make sanitize` and `make fuzz` use
set -euo pipefail

WITH_SANITIZE=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) WITH_SANITIZE=1 ;;
    *) echo "install-deps: unknown option '$arg' (expected --sanitize)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  build-essential cmake pkg-config
  libfaiss-dev libopenblas-dev libeigen3-dev libcxxopts-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libtomlplusplus-dev libxxhash-dev libstb-dev
  libroaring-dev libcpp-httplib-dev zlib1g-dev libhnswlib-dev libxgboost-dev
  # Product images: PNG and JPEG decoders (embed/image_file.h).
  libpng-dev libturbojpeg0-dev
  # HMAC-SHA256 for pseudonymous user ids (core/pseudonym.h).
  libssl-dev
  gnuplot-nox dataset-fashion-mnist
  # The Python package (python/, docs/python.md) and its pytest suite;
  # python3-faiss is the side-by-side reference of bench/python_bench.py.
  pybind11-dev python3-dev python3-numpy python3-scipy python3-pandas python3-pytest
  python3-faiss
  # python3-jsonschema validates the server's answers against docs/openapi.json.
  python3-jsonschema
  # The shared state store of serving replicas (serve/redis_state.h): the
  # hiredis client library, and the Redis server the tests start on loopback.
  libhiredis-dev redis-server
  # Training and batch scoring across processes (docs/scale.md): mpirun and
  # the headers the MPI plugin (mpi/) is built against. vitrine itself never
  # links MPI, so it runs without these where mpirun is not used.
  openmpi-bin libopenmpi-dev
  # A real browser for the pages vitrine writes and serves: headless
  # Chromium loads the A/B report (tests/report_browser_test.cc) and, driven
  # by Selenium through chromedriver, the advisor console
  # (tests/browser/test_console.py).
  chromium chromium-driver python3-selenium
)

# The ASan + UBSan and libFuzzer builds (docs/reliability.md): clang 14 with
# its runtimes (libclang-rt-14-dev holds libFuzzer as well as the sanitizer
# runtimes, so libfuzzer-14-dev is not needed), clang's OpenMP (libomp) and
# llvm-symbolizer for readable sanitizer stack traces.
SANITIZE_PACKAGES=(
  clang-14 libclang-rt-14-dev libomp-14-dev llvm-14
)
if [ "$WITH_SANITIZE" -eq 1 ]; then
  PACKAGES+=("${SANITIZE_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing ${missing[*]} and not root (no sudo); install them as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
