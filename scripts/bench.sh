#!/usr/bin/env bash
# make bench: the index speed comparison of docs/bench.md, side by side in one
# process per data set (vitrine's walk, raw FAISS, hnswlib; single thread, one
# query per call, recall@10 against exact search).
#   1. Fashion-MNIST (60k x 784 train images as the base, test images as
#      queries, L2), plot in $OUT/bench-fashion-mnist.svg
#   2. the fused vectors (inner product) of a generated 200k-item catalog
#      (skipped with BENCH_CATALOG=0; generating and building take minutes)
# Usage: scripts/bench.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
BUILD=${1:-build}
OUT=${2:-bench-out}
VITRINE="$BUILD/cli/vitrine"
FM=${VITRINE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
QUERIES=${BENCH_QUERIES:-1000}
REPEATS=${BENCH_REPEATS:-3}
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }

step "Fashion-MNIST: vitrine specs, raw FAISS and hnswlib (M=16, efC=100)"
"$VITRINE" bench --vectors "$FM/train-images-idx3-ubyte.gz" \
  --queries "$FM/t10k-images-idx3-ubyte.gz" --metric l2 \
  --specs "HNSW16;HNSW16,SQ8,RFlat;IVF512,Flat" \
  --ef 10,12,16,20,24,32,48,64 --nprobe 2,4,8,16,32 \
  --peers --queries-limit "$QUERIES" --repeats "$REPEATS" --cache-dir "$OUT/cache" \
  --output "$OUT/fashion-mnist.csv" --plot "$OUT/bench-fashion-mnist.svg" \
  | tee "$OUT/fashion-mnist.txt"

if [[ "${BENCH_CATALOG:-1}" != 0 ]]; then
  CAT="$OUT/catalog200k"
  if [[ ! -f "$CAT/bundle/manifest.json" ]]; then
    step "generating a 200k-item catalog and building its bundle"
    "$VITRINE" generate --items 200000 --users 50000 --seed 7 --out "$CAT/data"
    "$VITRINE" build --items "$CAT/data/items.csv" --interactions "$CAT/data/interactions.csv" \
      --images "$CAT/data/images.idx.gz" --out "$CAT/bundle"
  fi
  step "200k catalog fused vectors (inner product): the same comparison"
  "$VITRINE" bench --bundle "$CAT/bundle" \
    --specs "HNSW16;HNSW16,SQ8,RFlat;IVF1024,Flat" \
    --ef 10,12,16,20,24,32,48,64 --nprobe 2,4,8,16,32 \
    --peers --queries-limit "$QUERIES" --repeats "$REPEATS" --cache-dir "$OUT/cache" \
    --output "$OUT/catalog200k.csv" --plot "$OUT/bench-catalog200k.svg" \
    | tee "$OUT/catalog200k.txt"
fi
step "results in $OUT/"
