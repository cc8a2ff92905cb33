#!/usr/bin/env bash
# One training step of the compact model: chestnode (candle) against PyTorch,
# measured in the same run on the same machine with the same thread count.
#
# What is measured: forward in training mode, loss (image-level +
# segmentation BCE), backward and AdamW for chestnet-compact-v1 and -v2 at 256x256,
# batch 16, float32, CPU, 2 threads; median and p90 of 10 steps after 2
# warm-up steps.
#   - chestnode: `cargo bench --bench train_step` (benches/train_step.rs)
#   - PyTorch: bench/train_step_peers.py
#
# How to run:  PYTHON=~/venv-xrv/bin/python bash bench/train_step.sh
# PYTHON needs torch (tools/requirements.txt). Run on an otherwise idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=2
candle=$(cargo bench --bench train_step 2>/dev/null | grep '^{')
for architecture in v1 v2; do
    ours=$(echo "$candle" | grep "chestnet-compact-$architecture")
    pytorch=$("$PYTHON" bench/train_step_peers.py --threads 2 --architecture "$architecture")
    echo "$ours"
    echo "$pytorch"
    "$PYTHON" - "$ours" "$pytorch" <<'PY'
import json, sys
candle, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{candle['architecture']}: chestnode / PyTorch step time: "
      f"{candle['median_ms'] / torch['median_ms']:.2f} "
      f"({candle['median_ms']:.0f} ms vs {torch['median_ms']:.0f} ms; "
      f"{candle['batch'] * 1000 / candle['median_ms']:.1f} vs "
      f"{torch['batch'] * 1000 / torch['median_ms']:.1f} images/s)")
PY
done
