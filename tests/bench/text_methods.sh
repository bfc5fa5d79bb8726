#!/bin/sh
# Measures the text methods for docs/methods.md: recipes/shakespeare_char.lua's model with its
# baseline swept over several budgets (the frontier) and seq_length_warmup and alibi at one budget
# (with two controls: ALiBi on whole windows, and half windows with learned positions),
# several seeds, then `hasten compare`.
# Usage: sh tests/bench/text_methods.sh [TEXTFILE] [BUDGET] [SEEDS] [OUTDIR] [BASELINE_BUDGETS] [TARGET]
#        (defaults: Tiny Shakespeare, 3ep, "1 2 3", runs/text-methods, "1ep,2ep,3ep", test_loss=2.2)
#        TEXTFILE: any UTF-8 text instead, through the "text" dataset; the head is sized to its
#        characters. Runs go one seed a round, each round in another order. Resumable.
#        METHODS_RUN_OPTS="--device cuda" adds options to every run (engine/cuda/device_check.sh).
set -eu
text=${1:-}
budget=${2:-3ep}
seeds=${3:-"1 2 3"}
out=${4:-runs/text-methods}
sweep=${5:-1ep,2ep,3ep}
target=${6:-test_loss=2.2}
mkdir -p "$out"
recipe=recipes/shakespeare_char.lua
if [ -n "$text" ]; then
  [ -f "$text" ] || { echo "text_methods: $text: no such file" >&2; exit 2; }
  recipe="$out/text_char.lua"   # its head, nn.conv(nn.classes, 1), takes the text's vocabulary
  sed -e "s|\"tinyshakespeare\", context = 64|\"text\", path = \"$text\", context = 64|" \
      recipes/shakespeare_char.lua > "$recipe"
fi
variants="baseline seq_length_warmup alibi alibi:train=1 seq_length_warmup:start=32,warmup=1,multiple=32"
opts=${METHODS_RUN_OPTS:-}
# shellcheck disable=SC2086
quiet() { ./hasten sweep "$recipe" "$@" $opts --out "$out" >/dev/null ||
          echo "text_methods: a run of: hasten sweep $recipe $* failed (see above)" >&2; }
round=0
for s in $seeds; do
  order=$(echo $variants | awk -v k=$round '{ for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
  for v in $order; do
    case $v in
    baseline) quiet --budgets "$sweep" --seeds "$s" ;;
    *) quiet --budgets "$budget" --seeds "$s" --plugin "$v" ;;
    esac
  done
  round=$((round + 1))
done
./hasten compare "$out" --target "$target" --markdown
