#!/usr/bin/env bash
# make demo: sample catalog -> bundle -> similar items and recommendations.
set -euo pipefail
VITRINE=${1:-build/cli/vitrine}
OUT=${2:-demo}
"$VITRINE" generate --items 5000 --users 3000 --seed 7 --out "$OUT/data"
echo "demo: build/similar/recommend not wired yet" >&2
exit 1
