#!/bin/sh
# Produces the measured table of docs/methods.md: fmnist_cnn baseline versus baseline + each shipped
# plugin at an equal budget, several seeds, then `hasten compare` into Markdown.
# Usage: sh tests/bench/methods_table.sh [BUDGET] [SEEDS] [OUTDIR]   (defaults: 3ep "1 2 3" runs/methods)
# Takes about (plugins + 1) x seeds x the budget; run it on an otherwise idle machine.
set -eu
budget=${1:-3ep}
seeds=${2:-"1 2 3"}
out=${3:-runs/methods}
target=test_acc=0.90
methods="budget_schedule one_cycle warmup label_smoothing mixup cutmix cutout selective_backprop
layer_freezing ema grad_clipping data_echoing sam"
mkdir -p "$out"
run() {   # run VARIANT_DIR RECIPE [--plugin ...]
  dir=$1; recipe=$2; shift 2
  for s in $seeds; do
    [ -f "$out/$dir-s$s/summary.json" ] && grep -q '"status":[[:space:]]*"done"' "$out/$dir-s$s/summary.json" && continue
    rm -rf "$out/$dir-s$s"
    ./hasten run "$recipe" --budget "$budget" --seed "$s" --eval-every 117 --out "$out/$dir-s$s" --quiet "$@" \
      || echo "methods_table: $dir seed $s failed (kept in $out/$dir-s$s)" >&2
  done
}
run baseline fmnist_cnn
for m in $methods; do run "$m" fmnist_cnn --plugin "$m"; done
# Progressive resizing needs a size-agnostic head: its own recipe and its own baseline.
run gap-baseline fmnist_cnn_gap
run gap-progressive_resizing fmnist_cnn_gap --plugin progressive_resizing
./hasten compare "$out" --target "$target" --markdown
