#!/bin/bash
# The CUDA backend's check on a GPU machine, in one short session:
#   engine/cuda/device_check.sh pack   on the workstation: builds, then puts the binaries, the
#                                      shared libraries they need and Fashion-MNIST into .devcarry/
#                                      (ignored by git), for a GPU machine that lacks the build
#                                      dependencies and the network;
#   engine/cuda/device_check.sh run    on the GPU machine, from the repository root: CUDA parity
#                                      tests, the plugin tests on both devices, `hasten bench
#                                      --device cuda --batch 512`, the PyTorch
#                                      eager baseline of the same model on the same GPU, the
#                                      fmnist_cnn time to 90%, the text model and its methods
#                                      (tests/bench/text_methods.sh), and with HASTEN_PROFILE=1 a
#                                      per-kernel profile (ncu). Results land in $OUT (or
#                                      /tmp/hasten-device).
#   engine/cuda/device_check.sh tests  on the GPU machine: the parity and plugin tests alone.
#   engine/cuda/device_check.sh methods [SECONDS]   on the GPU machine: tests/bench/methods_table.sh
#                                      with --device cuda (docs/methods.md's table), bounded.
# Not a test target: CI has no GPU; `make test` runs test_cuda, which skips there.
set -u
C=.devcarry
# Every timeout kills 10 s after its TERM (-k 10): hasten run takes TERM as "stop after this step",
# so a run stuck in the device would outlive a plain timeout and the session's device time.

pack() {
    make -j"$(nproc)" hasten build/tests/test_cuda build/tests/test_plugins >/dev/null || exit 1
    rm -rf "$C" && mkdir -p "$C/bin" "$C/data/fashion-mnist" "$C/lib"
    cp hasten build/tests/test_cuda build/tests/test_plugins "$C/bin/"
    # Every library the binaries load, except the C runtime the GPU machine has its own of.
    ldd "$C"/bin/* | awk '/=> \//{print $3}' | sort -u |
        grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
        xargs -I{} cp -L {} "$C/lib/"
    tar -cJf "$C/libs.tar.xz" -C "$C/lib" . && rm -rf "$C/lib"
    cp /usr/share/datasets/fashion-mnist/*.gz "$C/data/fashion-mnist/"
    cat /usr/share/vim/vim90/doc/usr_*.txt >"$C/data/text.txt"   # the text methods' corpus here
    mkdir -p .git/info
    grep -qx "/$C/" .git/info/exclude 2>/dev/null || echo "/$C/" >>.git/info/exclude
    du -sh "$C"
}

# The machine, the libraries and the dataset: sets out, H, T and P.
setup() {
    out=${OUT:-/tmp/hasten-device}
    mkdir -p "$out"
    echo "== machine"
    grep PRETTY /etc/os-release; nproc
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    mkdir -p /tmp/hasten-lib && tar -xJf "$C/libs.tar.xz" -C /tmp/hasten-lib
    blas=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 2>/dev/null | while read -r d; do
        [ -e "$d/libcublas.so.13" ] && echo "$d"; done | head -1)
    [ -n "$blas" ] || blas=$(dirname "$(find / -xdev -name 'libcublas.so.13' 2>/dev/null | head -1)")
    echo "cuBLAS from: $blas"
    export LD_LIBRARY_PATH=/tmp/hasten-lib:$blas:${LD_LIBRARY_PATH:-}
    if [ -d /usr/share/datasets/fashion-mnist ]; then echo "dataset: system copy"
    else export HASTEN_DATA_DIR=$PWD/$C/data; echo "dataset: carried copy"; fi
    H=$C/bin/hasten
    T=$C/bin/test_cuda
    P=$C/bin/test_plugins
    if ! "$H" --version; then   # the carried build does not start here: build on this machine
        echo "carried binaries do not run here; building"
        make -j"$(nproc)" hasten build/tests/test_cuda build/tests/test_plugins >"$out/build.log" 2>&1 ||
            tail -20 "$out/build.log"
        H=./hasten T=build/tests/test_cuda P=build/tests/test_plugins
    fi
}

run() {
    only_tests=${1:-}
    setup

    echo "== CUDA parity tests"
    if ! timeout -k 10 150 "$T" >"$out/test_cuda.log" 2>&1; then
        tail -40 "$out/test_cuda.log"
        echo "== compute-sanitizer on the failing tests"
        timeout -k 10 100 compute-sanitizer --print-limit 8 "$T" >"$out/sanitizer.log" 2>&1
        tail -40 "$out/sanitizer.log"
    else
        grep -E "OK|PASSED|SKIPPED|model|steps|gap|op " "$out/test_cuda.log"
    fi

    echo "== plugin tests, CPU then CUDA"
    if ! timeout -k 10 120 "$P" >"$out/test_plugins.log" 2>&1; then tail -40 "$out/test_plugins.log"
    else grep -E "PASSED|SKIPPED|FAILED|first loss" "$out/test_plugins.log"; fi

    [ -z "$only_tests" ] || return 0

    echo "== hasten bench --device cuda --batch 512, three times (then 128 once)"
    for i in 1 2 3; do timeout -k 10 90 "$H" bench --device cuda --batch 512 --json | tee -a "$out/bench.json"; echo; done
    timeout -k 10 90 "$H" bench --device cuda --batch 128
    echo "== where a GPU step goes: hasten bench --device cuda --batch 512 --layers (synchronised per layer)"
    timeout -k 10 90 "$H" bench --device cuda --batch 512 --layers | sed -n '/time per layer/,$p'

    echo "== PyTorch eager, same model, same GPU, batch 512, three times"
    for i in 1 2 3; do
        PYTHONUNBUFFERED=1 timeout -k 10 120 python3 tests/bench/torch_fmnist_cnn.py --batch 512 | tee -a "$out/torch.jsonl"
    done

    echo "== fmnist_cnn to 90% test accuracy on the GPU"
    for run in "512 10ep 1" "512 10ep 2" "512 10ep 3" "128 10ep 1" "128 10ep 2" "128 10ep 3"; do
        set -- $run
        rm -rf /tmp/hasten-run
        timeout -k 10 60 "$H" run fmnist_cnn --device cuda --batch "$1" --budget "$2" --seed "$3" \
            --out /tmp/hasten-run --quiet
        echo "batch $1, $2, seed $3: $(grep -o '"time_to_target":[^,]*' /tmp/hasten-run/summary.json)" \
             "$(grep -o '"train_seconds":[^,]*' /tmp/hasten-run/summary.json)" \
             "$(grep -o '"samples_per_second":[^,]*' /tmp/hasten-run/summary.json)"
        grep test_acc /tmp/hasten-run/metrics.jsonl | sed 's/.*"seconds":\([^,]*\).*"test_acc":\([^}]*\).*/  \1 s: test_acc \2/'
        cat /tmp/hasten-run/summary.json >>"$out/runs.json"
    done

    echo "== real runs on the GPU: plugins, the resnet recipe, --device auto (3 epochs, batch 512)"
    for p in none whitening_init muon sam ema low_precision "whitening_init --plugin muon"; do
        rm -rf /tmp/hasten-run
        plug=; [ "$p" = none ] || plug="--plugin $p"
        # shellcheck disable=SC2086
        timeout -k 10 60 "$H" run fmnist_cnn --device cuda --batch 512 --budget 3ep $plug \
            --out /tmp/hasten-run --quiet 2>&1 | sed "s|^|$p: |"
    done
    rm -rf /tmp/hasten-run
    timeout -k 10 90 "$H" run fmnist_resnet --device auto --budget 1ep --out /tmp/hasten-run --quiet 2>&1 |
        sed 's|^|fmnist_resnet, auto: |'

    # The plugins whose batch operations run as device kernels: ms per step at the recipe's batch
    # 128, against docs/methods.md's H100 table (there: mixup 0.69, cutmix 0.66, cutout 0.59,
    # fmnist_cnn_gap with colout 1.12 and progressive_resizing 0.81, baselines 0.45 and 0.52).
    echo "== batch-operation plugins on the GPU (1 epoch, batch 128; ms per step)"
    for p in "fmnist_cnn none" "fmnist_cnn mixup" "fmnist_cnn cutmix" "fmnist_cnn cutout" \
             "fmnist_cnn_gap none" "fmnist_cnn_gap colout" "fmnist_cnn_gap progressive_resizing"; do
        set -- $p
        plug=; [ "$2" = none ] || plug="--plugin $2"
        rm -rf /tmp/hasten-run
        # shellcheck disable=SC2086
        timeout -k 10 60 "$H" run "$1" --device cuda --budget 1ep $plug --out /tmp/hasten-run --quiet >/dev/null 2>&1
        echo "$1 $2: $(grep -o '"train_seconds":[^,]*' /tmp/hasten-run/summary.json)" \
             "$(grep -o '"steps":[^,]*' /tmp/hasten-run/summary.json)" \
             "$(grep -o '"test_acc":[^,]*' /tmp/hasten-run/summary.json)"
    done

    # The text model: parity is in test_cuda and test_plugins; here its speed and the text methods
    # on a real text (Vim's user manual, carried: no network), one seed, against docs/methods.md's
    # CPU table of the same runs.
    echo "== the character model and the text methods on the GPU (3 epochs, seed 1)"
    [ "$H" = ./hasten ] || cp "$H" ./hasten
    rm -rf /tmp/text-gpu
    METHODS_RUN_OPTS="--device cuda" timeout -k 10 150 sh tests/bench/text_methods.sh "$PWD/$C/data/text.txt" 3ep 1 \
        /tmp/text-gpu >"$out/text.md" 2>"$out/text.err"
    echo "text_methods: exit $?"; cat "$out/text.md"; tail -3 "$out/text.err"

    echo "== the workbench on the GPU (10 s in a terminal; its header and run table)"
    if command -v tmux >/dev/null; then
        tmux new-session -d -s hw -x 140 -y 40 "$H --device cuda --budget 2ep" && sleep 10 &&
            tmux capture-pane -pt hw | grep -E "hasten|baseline|Step time|cuda|error" | head -8
        tmux kill-server 2>/dev/null
    else
        TERM=xterm timeout -k 10 10 script -qc "$H --device cuda --budget 2ep" /dev/null >"$out/workbench.tty" 2>&1
        echo "exit $? (10 s cut it); $(grep -c cuda "$out/workbench.tty") lines naming cuda in its output"
    fi

    [ -n "${HASTEN_PROFILE:-}" ] || return 0
    # hasten run refuses an --out that already holds a run: a second call on a warm machine
    # would profile nothing
    rm -rf /tmp/hasten-prof /tmp/hasten-prof-bf16
    echo "== per-kernel GPU time of one fmnist_cnn step (ncu)"
    timeout -k 10 120 ncu --metrics gpu__time_duration.sum --launch-skip 500 --launch-count 60 \
        --print-summary per-kernel "$H" run fmnist_cnn --device cuda --batch 512 --budget 30steps \
        --quiet --out /tmp/hasten-prof >"$out/ncu.txt" 2>&1
    echo "ncu: exit $?, $(grep -c gpu__time_duration "$out/ncu.txt") kernel rows in ncu.txt"
    echo "== the matrix-product kernels of a low_precision step (bf16 ones name bf16)"
    timeout -k 10 120 ncu --metrics gpu__time_duration.sum --launch-skip 500 --launch-count 60 \
        --print-summary per-kernel "$H" run fmnist_cnn --device cuda --batch 512 --budget 30steps \
        --plugin low_precision --quiet --out /tmp/hasten-prof-bf16 >"$out/ncu_bf16.txt" 2>&1
    grep -oE "(sm[0-9]+_xmma|cutlass|Kernel2|gemm)[A-Za-z0-9_<>:, ]*" "$out/ncu_bf16.txt" | sort | uniq -c | head -12
}

# docs/methods.md's table on the GPU: every method, three seeds, within the given seconds; the
# runs (without weights) come back as methods-runs.tgz, the table as methods.md.
methods() {
    setup
    [ "$H" = ./hasten ] || cp "$H" ./hasten
    rm -rf /tmp/methods-gpu
    METHODS_RUN_OPTS="--device cuda" timeout -k 10 "${1:-360}" sh tests/bench/methods_table.sh 3ep "1 2 3" \
        /tmp/methods-gpu >/dev/null 2>"$out/methods.err"
    echo "methods_table: exit $?, $(ls /tmp/methods-gpu | wc -l) runs"
    tar -czf "$out/methods-runs.tgz" --exclude weights.bin -C /tmp methods-gpu
    ./hasten compare /tmp/methods-gpu --target test_acc=0.90 --markdown >"$out/methods.md" 2>&1
    ./hasten compare /tmp/methods-gpu --target test_acc=0.90
}

case "${1:-}" in
pack) pack ;;
run) mkdir -p "${OUT:-/tmp/hasten-device}" && run 2>&1 | tee "${OUT:-/tmp/hasten-device}/all.log" ;;
tests) mkdir -p "${OUT:-/tmp/hasten-device}" && run tests 2>&1 | tee "${OUT:-/tmp/hasten-device}/all.log" ;;
methods) mkdir -p "${OUT:-/tmp/hasten-device}" && methods "${2:-}" 2>&1 | tee "${OUT:-/tmp/hasten-device}/all.log" ;;
*) echo "usage: $0 pack | run | tests | methods [SECONDS]" >&2; exit 2 ;;
esac
