#!/bin/sh
# Produces the measured table of docs/methods.md: the fmnist_cnn baseline swept over several budgets
# (its time/quality frontier), and baseline + each shipped plugin at one budget, several seeds, then
# `hasten compare` into Markdown.
# Usage: sh tests/bench/methods_table.sh [BUDGET] [SEEDS] [OUTDIR] [BASELINE_BUDGETS]
#        (defaults: 3ep "1 2 3" runs/methods "1ep,2ep,3ep,4ep")
# Takes about (plugins + 4) x seeds x the budget; run it on an otherwise idle machine. Resumable:
# finished runs are kept.
set -eu
budget=${1:-3ep}
seeds=$(echo "${2:-1 2 3}" | tr ' ' ',')
out=${3:-runs/methods}
sweep=${4:-1ep,2ep,3ep,4ep}
target=test_acc=0.90
methods="budget_schedule one_cycle warmup label_smoothing mixup cutmix cutout selective_backprop
layer_freezing ema grad_clipping data_echoing sam"
mkdir -p "$out"
quiet() { ./hasten sweep "$@" --seeds "$seeds" --eval-every 117 --out "$out" >/dev/null ||
          echo "methods_table: a run of: hasten sweep $* failed (see above)" >&2; }
quiet fmnist_cnn --budgets "$sweep"
for m in $methods; do quiet fmnist_cnn --budgets "$budget" --plugin "$m"; done
# Progressive resizing needs a size-agnostic head: its own recipe and its own baseline.
quiet fmnist_cnn_gap --budgets "$budget"
quiet fmnist_cnn_gap --budgets "$budget" --plugin progressive_resizing
./hasten compare "$out" --target "$target" --markdown
