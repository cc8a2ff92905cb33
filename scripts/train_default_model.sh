#!/usr/bin/env bash
# Rebuilds the embedded default model (weights/chestnet-compact-default.*)
# from seeds, and evaluates it on both held-out sets its model card reports:
#
#   1. training data: 2,400 synthetic radiographs (seed 11, 512 px, 360 mm
#      field), 15 % of them drawn on two real normal radiographs
#      (nih/00000001_000.png, tbx11k/h0001.png);
#   2. `chestnode train --preset default` (seed 1, chestnet-compact-v2): about an hour on 2 cores;
#   3. held-out synthetic test set: 200 images, seed 29, no real backgrounds;
#   4. held-out real test set: 60 images with findings inserted into the
#      third real radiograph (nih/00027426_000.png), never seen in training,
#      seed 47.
#
# Usage: scripts/train_default_model.sh [WORK_DIR]   (default: target/default-model)
# Needs ../shared/data/cxr (or $CHESTNODE_TEST_DATA/cxr). Writes only under
# WORK_DIR; copy WORK_DIR/model/chestnet-compact-default.{safetensors,toml}
# into weights/ to ship the result, and update the manifest's texts and
# weights/README.md from WORK_DIR/eval-*/evaluation.md.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-target/default-model}
cxr=${CHESTNODE_TEST_DATA:-../shared/data}/cxr
mkdir -p "$work"

cargo build --release --locked
chestnode=target/release/chestnode
if [ -n "${CARGO_TARGET_DIR:-}" ]; then chestnode=$CARGO_TARGET_DIR/release/chestnode; fi

timed() {
    local started=$SECONDS
    "$@"
    echo "($((SECONDS - started)) s: $*)" | tee -a "$work/timings.txt"
}

rm -rf "$work/train-data" "$work/test-synthetic" "$work/test-real"
timed "$chestnode" synth --out "$work/train-data" --count 2400 --seed 11 --size 512 \
    --insert-into "$cxr/nih/00000001_000.png" --insert-into "$cxr/tbx11k/h0001.png" \
    --insert-fraction 0.15
timed "$chestnode" synth --out "$work/test-synthetic" --count 200 --seed 29 --size 512
timed "$chestnode" synth --out "$work/test-real" --count 60 --seed 47 --size 512 \
    --insert-into "$cxr/nih/00027426_000.png" --insert-fraction 1.0

timed "$chestnode" train --data "$work/train-data" --out "$work/model" --preset default 2>&1 |
    tee "$work/train.log"

manifest=$work/model/chestnet-compact-default.toml
timed "$chestnode" evaluate --data "$work/test-synthetic" --model "$manifest" --out "$work/eval-synthetic"
timed "$chestnode" evaluate --data "$work/test-real" --model "$manifest" --out "$work/eval-real"
echo "model: $manifest; evaluations: $work/eval-synthetic, $work/eval-real"
