#!/bin/sh
# Produces the measured table of docs/methods.md: the fmnist_cnn baseline swept over several budgets
# (its time/quality frontier), and baseline + each shipped plugin at one budget, several seeds, then
# `hasten compare` into Markdown.
# Usage: sh tests/bench/methods_table.sh [BUDGET] [SEEDS] [OUTDIR] [BASELINE_BUDGETS]
#        (defaults: 3ep "1 2 3" runs/methods "1ep,2ep,3ep,4ep,5ep")
#        METHODS_RUN_OPTS="--device cuda" adds options to every run; on the GPU low_precision joins.
# Runs go round by round, one seed a round, each round in another order, so that the machine's
# drift over the hour spreads over every variant instead of favouring whichever ran last.
# Takes about (plugins + 8) x seeds x the budget; run it on an otherwise idle machine. Resumable:
# finished runs are kept. Not here: distillation (needs a teacher run), stochastic_depth (needs
# residual blocks), low_precision (needs CUDA); docs/methods.md gives their commands.
set -eu
budget=${1:-3ep}
seeds=${2:-"1 2 3"}
out=${3:-runs/methods}
sweep=${4:-1ep,2ep,3ep,4ep,5ep}
target=test_acc=0.90
variants="baseline budget_schedule one_cycle warmup label_smoothing mixup cutmix cutout
alternating_flip data_pruning curriculum selective_backprop layer_freezing low_rank pruning ghost_batchnorm blurpool squeeze_excite
whitening_init dirac_init ema swa lookahead batch_warmup grad_clipping lars muon data_echoing sam
whitening_init+muon gap-baseline gap-progressive_resizing gap-colout"
opts=${METHODS_RUN_OPTS:-}
case $opts in *cuda*) variants="$variants low_precision" ;; esac
mkdir -p "$out"
# shellcheck disable=SC2086
quiet() { ./hasten sweep "$@" --eval-every 117 $opts --out "$out" >/dev/null ||
          echo "methods_table: a run of: hasten sweep $* failed (see above)" >&2; }
round=0
for s in $seeds; do
  # this round's order: the list rotated by 5 places a round
  order=$(echo $variants | awk -v k=$((round * 5)) '{ for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
  for v in $order; do
    case $v in
    baseline) quiet fmnist_cnn --budgets "$sweep" --seeds "$s" ;;
    # Progressive resizing and colout need a size-agnostic head: their own recipe and swept baseline.
    gap-baseline) quiet fmnist_cnn_gap --budgets "1ep,2ep,$budget" --seeds "$s" ;;
    gap-*) quiet fmnist_cnn_gap --budgets "$budget" --seeds "$s" --plugin "${v#gap-}" ;;
    # The two that land above the frontier also run at 2 epochs: a second point of their own curve.
    muon|whitening_init) quiet fmnist_cnn --budgets "2ep,$budget" --seeds "$s" --plugin "$v" ;;
    # ... and together, at 2 epochs.
    whitening_init+muon) quiet fmnist_cnn --budgets 2ep --seeds "$s" --plugin whitening_init --plugin muon ;;
    *) quiet fmnist_cnn --budgets "$budget" --seeds "$s" --plugin "$v" ;;
    esac
  done
  round=$((round + 1))
done
./hasten compare "$out" --target "$target" --markdown
