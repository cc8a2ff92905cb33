#!/usr/bin/env bash
# One training step, and one inference pass, of the compact model:
# chestnode (candle) against PyTorch, measured in the same run on the same
# machine with the same thread count.
#
# What is measured, at each input size in $SIZES (default "256 384"):
#   - training: forward in training mode, loss (image-level + segmentation
#     BCE), backward and AdamW for chestnet-compact-v1 and -v2, batch 16,
#     float32, CPU, 2 threads; median and p90 of 10 steps after 2 warm-up
#     steps;
#   - inference: one image through v2 in evaluation mode; median and p90 of
#     20 passes after 3 warm-up passes.
#   - chestnode: `cargo bench --bench train_step` (benches/train_step.rs,
#     size from CHESTNODE_BENCH_SIZE)
#   - PyTorch: bench/train_step_peers.py
#
# How to run:  PYTHON=/work/venv-torch/bin/python bash bench/train_step.sh
# PYTHON needs torch (tools/requirements.txt). Run on an otherwise idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=2
compare() {
    "$PYTHON" - "$1" "$2" <<'PY'
import json, sys
candle, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
mode = candle.get("mode", "training step")
print(f"{candle['architecture']} {mode} at {candle['size']}²: chestnode / PyTorch time: "
      f"{candle['median_ms'] / torch['median_ms']:.2f} "
      f"({candle['median_ms']:.1f} ms vs {torch['median_ms']:.1f} ms; "
      f"{candle['batch'] * 1000 / candle['median_ms']:.1f} vs "
      f"{torch['batch'] * 1000 / torch['median_ms']:.1f} images/s)")
PY
}
for size in ${SIZES:-256 384}; do
    candle=$(CHESTNODE_BENCH_SIZE=$size cargo bench --bench train_step 2>/dev/null | grep '^{')
    for architecture in v1 v2; do
        ours=$(echo "$candle" | grep -v inference | grep "chestnet-compact-$architecture")
        pytorch=$("$PYTHON" bench/train_step_peers.py --threads 2 --architecture "$architecture" --size "$size")
        echo "$ours"
        echo "$pytorch"
        compare "$ours" "$pytorch"
    done
    ours=$(echo "$candle" | grep inference)
    pytorch=$("$PYTHON" bench/train_step_peers.py --threads 2 --size "$size" --inference)
    echo "$ours"
    echo "$pytorch"
    compare "$ours" "$pytorch"
done
