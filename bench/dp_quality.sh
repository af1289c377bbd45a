#!/usr/bin/env bash
# The price of differential privacy on a held-out split (docs/privacy.md,
# "What privacy costs"): builds the split's train part with --dp-epsilon E
# for each E, with several noise seeds, and evaluates each bundle's answers
# on the test part. Prints one line per (epsilon, seed) and the median per
# epsilon, and plots NDCG@10 against epsilon (gnuplot, SVG).
#
#   bench/dp_quality.sh VITRINE ITEMS TRAIN TEST IMAGES OUT_DIR [PLOT.svg]
#
# "none" is the ordinary build (hybrid answers and the bundle's default);
# epsilon 1000 keeps the bounding (k items per user, 5 iterations, no ranker)
# with almost no noise, separating the cost of the noise from the cost of
# the bounds.
set -euo pipefail
VITRINE=$1 ITEMS=$2 TRAIN=$3 TEST=$4 IMAGES=$5 OUT=$6 PLOT=${7:-}
EPSILONS=${EPSILONS:-"1 4 16 1000"}
SEEDS=${SEEDS:-"1 2 3"}
mkdir -p "$OUT"
rows="$OUT/rows.tsv"
: >"$rows"

# evaluate's table line of a model -> "ndcg cold_recall"
metrics() { awk -v m="$2" '$1 == m { print $4, $9 }' "$1"; }

# The ordinary bundle's evaluation is kept in OUT and reused by a re-run.
if [ ! -s "$OUT/none.txt" ]; then
  echo "building and evaluating the ordinary bundle" >&2
  "$VITRINE" build -q --items "$ITEMS" --interactions "$TRAIN" --images "$IMAGES" --out "$OUT/none" >/dev/null
  "$VITRINE" evaluate -q --bundle "$OUT/none" --test "$TEST" --models default,hybrid,cold-start \
    --next-step-column none >"$OUT/none.txt"
fi
read -r nd_def _ < <(metrics "$OUT/none.txt" default)
read -r nd_hyb _ < <(metrics "$OUT/none.txt" hybrid)
read -r _ cold < <(metrics "$OUT/none.txt" cold-start)
printf 'none\t-\t%s\t%s\t%s\n' "$nd_hyb" "$cold" "$nd_def" >>"$rows"

for eps in $EPSILONS; do
  for seed in $SEEDS; do
    echo "epsilon $eps, noise seed $seed" >&2
    b="$OUT/eps$eps-seed$seed"
    "$VITRINE" build -q --items "$ITEMS" --interactions "$TRAIN" --images "$IMAGES" --out "$b" \
      --dp-epsilon "$eps" --dp-seed "$seed" >/dev/null
    "$VITRINE" evaluate -q --bundle "$b" --test "$TEST" --models hybrid,cold-start \
      --next-step-column none >"$b.txt"
    read -r nd _ < <(metrics "$b.txt" hybrid)
    read -r _ cold < <(metrics "$b.txt" cold-start)
    printf '%s\t%s\t%s\t%s\t-\n' "$eps" "$seed" "$nd" "$cold" >>"$rows"
    rm -rf "$b"
  done
done

echo
printf '%-8s %-5s %10s %12s %14s\n' epsilon seed ndcg@10 cold_recall default_ndcg@10
awk -F'\t' '{ printf "%-8s %-5s %10s %12s %14s\n", $1, $2, $3, $4, $5 }' "$rows"
echo
echo "median over noise seeds"
printf '%-8s %10s %12s\n' epsilon ndcg@10 cold_recall
medians="$OUT/medians.tsv"
awk -F'\t' '$1 != "none" { n[$1]++; v[$1, n[$1]] = $3; c[$1, n[$1]] = $4; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  function med(arr, key, cnt,   i, j, t, a) { for (i = 1; i <= cnt; i++) a[i] = arr[key, i]
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return cnt % 2 ? a[(cnt + 1) / 2] : (a[cnt / 2] + a[cnt / 2 + 1]) / 2 }
  END { for (i = 1; i <= k; i++) { e = order[i]; printf "%s\t%.4f\t%.4f\n", e, med(v, e, n[e]), med(c, e, n[e]) } }' "$rows" >"$medians"
awk -F'\t' '{ printf "%-8s %10s %12s\n", $1, $2, $3 }' "$medians"
awk -F'\t' '$1 == "none" { printf "%-8s %10s %12s   (default answers: %s)\n", "none", $3, $4, $5 }' "$rows"

if [ -n "$PLOT" ]; then
  none=$(awk -F'\t' '$1 == "none" { print $3 }' "$rows")
  gnuplot <<GP
set terminal svg size 640,400 dynamic noenhanced font "sans,11"
set output "$PLOT"
set logscale x
set xlabel "epsilon (user-level, delta 1e-6)"
set ylabel "NDCG@10, hybrid answers"
set key bottom right
set grid
plot "$medians" using 1:2 with linespoints pt 7 title "private build (median of seeds)", \
     $none with lines dt 2 title "ordinary build"
GP
  echo "plot: $PLOT"
fi
