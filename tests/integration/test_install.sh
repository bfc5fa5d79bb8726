#!/bin/sh
# `make install PREFIX=...` layout works from anywhere: the binary finds its recipes and plugins
# in <prefix>/share/hasten next to <prefix>/bin, whatever PREFIX the build was configured with.
set -u
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/share/hasten/recipes" "$dir/share/hasten/plugins" "$dir/elsewhere"
cp hasten "$dir/bin/" && cp recipes/*.lua "$dir/share/hasten/recipes/" && cp plugins/*.lua "$dir/share/hasten/plugins/"
root=$(pwd)
cd "$dir/elsewhere" || exit 1
HOME="$dir" "$dir/bin/hasten" plugins | grep -q "label_smoothing" || { echo "install: plugins not found next to the binary"; exit 1; }
HOME="$dir" "$dir/bin/hasten" run fmnist_mlp --budget 5steps --plugin ema --out "$dir/run" --quiet 2>/dev/null \
  || { echo "install: recipe or plugin not found next to the binary"; exit 1; }
HOME="$dir" "$dir/bin/hasten" run no_such_recipe 2> "$dir/err"
grep -q "$dir/bin/../share/hasten/recipes" "$dir/err" || { echo "install: unclear message: $(cat "$dir/err")"; exit 1; }
cd "$root" || exit 1
echo "install layout: ok"
