#!/bin/sh
# The plugin tutorial in docs/plugins.md works as written: its code block, saved as a plugin,
# loads, shows in the catalogue and runs.
set -u
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -n '/^```lua$/,/^```$/p' docs/plugins.md | sed '1d;$d' | awk 'NR==1,/^}$/' > "$dir/grad_noise.lua"
grep -q 'name = "grad_noise"' "$dir/grad_noise.lua" || { echo "tutorial block not found in docs/plugins.md"; exit 1; }
./hasten plugins --plugin-path "$dir" | grep -q "grad_noise" || { echo "tutorial plugin not in the catalogue"; exit 1; }
./hasten run fmnist_mlp --budget 20steps --plugin-path "$dir" --plugin grad_noise:eta=0.05 \
    --out "$dir/run" --quiet || { echo "tutorial plugin run failed"; exit 1; }
grep -q '"grad_noise"' "$dir/run/summary.json" || { echo "summary does not list the plugin"; exit 1; }
./hasten run fmnist_mlp --budget 20steps --plugin-path "$dir" --plugin grad_noise:eta=5 --out "$dir/bad" --quiet \
    2> "$dir/err" && { echo "out-of-range parameter accepted"; exit 1; }
grep -q "eta = 5 is outside" "$dir/err" || { echo "unclear parameter error: $(cat "$dir/err")"; exit 1; }
echo "tutorial plugin: ok"
