#!/usr/bin/env bash
# DenseNet-121 forward latency: chestnode (candle) against PyTorch and ONNX
# Runtime, measured in the same run on the same machine.
#
# What is measured: one forward pass of DenseNet-121 (torchxrayvision's
# densenet121-res224-all architecture: 1×224×224 in, 18 logits out), batch 1,
# float32, CPU, 2 threads for every peer, the deterministic weights of
# tests/fixtures/densenet121_parity/README.md; median and p90 of 15 runs
# after warm-up.
#   - chestnode: `cargo bench --bench densenet` (benches/densenet.rs)
#   - PyTorch and ONNX Runtime: bench/densenet_peers.py
#
# How to run:  PYTHON=~/venv-xrv/bin/python bash bench/densenet.sh
# PYTHON must have tools/requirements.txt installed (see tools/README.md).
# The machine should be otherwise idle; the peers script reports CPU used
# by other processes during its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

export RAYON_NUM_THREADS=2
cargo bench --bench densenet 2>/dev/null | grep '^{' > "$out/candle.json"
"$PYTHON" bench/densenet_peers.py --json "$out/peers.json" > "$out/peers.txt"
cat "$out/peers.txt"

"$PYTHON" - "$out/candle.json" "$out/peers.json" <<'PY'
import json, sys
candle = json.load(open(sys.argv[1]))
peers = json.load(open(sys.argv[2]))["peers"]
torch_ms = peers["pytorch"]["median_ms"]
ort_ms = peers["onnxruntime"]["median_ms"]
print()
print("| peer | median ms | p90 ms |")
print("|---|---:|---:|")
print(f"| chestnode (candle, {candle['threads']} threads) | {candle['median_ms']:.1f} | {candle['p90_ms']:.1f} |")
print(f"| PyTorch | {torch_ms:.1f} | {peers['pytorch']['p90_ms']:.1f} |")
print(f"| ONNX Runtime | {ort_ms:.1f} | {peers['onnxruntime']['p90_ms']:.1f} |")
print()
print(f"chestnode / PyTorch time: {candle['median_ms'] / torch_ms:.2f}  (below 1 = faster than PyTorch)")
print(f"chestnode / ONNX Runtime time: {candle['median_ms'] / ort_ms:.2f}")
PY
