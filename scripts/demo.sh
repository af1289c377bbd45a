#!/usr/bin/env bash
# make demo: sample catalog -> bundle -> similar items and recommendations.
# Every step must succeed; nothing is skipped silently.
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
VITRINE=${1:-build/cli/vitrine}
OUT=${2:-demo}

step() { printf '\n==> %s\n' "$*" >&2; }

step "generate a luxury-fashion sample catalog (Fashion-MNIST images)"
"$VITRINE" generate --items 5000 --users 20000 --seed 7 --out "$OUT/data"

step "build the bundle: ALS + content + visual vectors, cold start, HNSW index"
"$VITRINE" build --items "$OUT/data/items.csv" --interactions "$OUT/data/interactions.csv" \
  --images "$OUT/data/images.idx.gz" --out "$OUT/bundle"

step "inspect the bundle (verifies every checksum)"
"$VITRINE" inspect --bundle "$OUT/bundle"

ITEM=$(sed -n 2p "$OUT/data/items.csv" | cut -d, -f1)
step "items similar to $ITEM"
"$VITRINE" similar --bundle "$OUT/bundle" --item "$ITEM" -k 8 --explain

USER_ID=$(sed -n 2p "$OUT/data/interactions.csv" | cut -d, -f1)
step "recommendations for $USER_ID"
"$VITRINE" recommend --bundle "$OUT/bundle" --user "$USER_ID" -k 8 --explain

step "recommendations for an anonymous session (history folded in, nothing stored)"
HIST=$(sed -n '2p;3p;4p' "$OUT/data/items.csv" | cut -d, -f1 | paste -sd, -)
"$VITRINE" recommend --bundle "$OUT/bundle" --history "$HIST" -k 8
