#!/usr/bin/env bash
# Rebuilds the embedded default model (weights/chestnet-compact-default.*)
# from the real corpus and seeds, and evaluates it on the held-out sets its
# model card reports (docs/training.md, "Training on real radiographs"):
#
#   1. `chestnode corpus`: ../shared/data/cxr-train (and the extra JSRT
#      corpus, when built: scripts/corpus/build_extra_corpus.py) imported
#      with a per-patient train/validation/test split (seed 1, 15 %/15 %);
#      images reserved for evaluation are refused;
#   2. lesions inserted into the adult normals of each split (train 1,800,
#      seed 101; validation 300, seed 102; test 400, seed 103), and 600
#      synthetic thoraxes (seed 11) for findings no real film shows;
#   3. `chestnode train --preset real`, fine-tuned from the previous
#      default model (0.3.0, trained on synthetic data: git show
#      5535676:weights/chestnet-compact-default.safetensors), leaving out
#      the COVID-CXNet publication figures and paediatric films: about an
#      hour on 2 cores;
#   4. evaluation on the corpus's test split (real films, adults; and
#      paediatric films separately), on lesions inserted into test-split
#      films, and on 200 synthetic images (seed 29).
#
# Usage: scripts/train_default_model.sh [WORK_DIR]   (default: target/default-model)
# Needs ../shared/data (or $CHESTNODE_TEST_DATA); uses $CORPUS_EXTRA
# (default /work/corpus-extra) when it exists. Writes only under WORK_DIR;
# copy WORK_DIR/model/chestnet-compact-default.{safetensors,toml} into
# weights/ to ship the result.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-target/default-model}
data=${CHESTNODE_TEST_DATA:-../shared/data}
extra=${CORPUS_EXTRA:-/work/corpus-extra}
mkdir -p "$work"

cargo build --release --locked
chestnode=target/release/chestnode
if [ -n "${CARGO_TARGET_DIR:-}" ]; then chestnode=$CARGO_TARGET_DIR/release/chestnode; fi

timed() {
    local started=$SECONDS
    "$@"
    echo "($((SECONDS - started)) s: $*)" | tee -a "$work/timings.txt"
}

csvs=(--csv "$data/cxr-train/labels.csv")
if [ -f "$extra/labels.csv" ]; then csvs+=(--csv "$extra/labels.csv"); fi
rm -rf "$work/corpus" "$work"/inserted-* "$work"/synthetic-* "$work/model"
timed "$chestnode" corpus "${csvs[@]}" --reserved "$data/reserved-for-evaluation.txt" \
    --out "$work/corpus"
for spec in "train 1800 101" "validation 300 102" "test 400 103"; do
    set -- $spec
    timed "$chestnode" synth --out "$work/inserted-$1" --count "$2" --seed "$3" --size 512 \
        --insert-into "$work/corpus" --insert-split "$1" --insert-fraction 1.0 \
        --monochrome1-fraction 0.2
done
timed "$chestnode" synth --out "$work/synthetic-train" --count 600 --seed 11 --size 512
timed "$chestnode" synth --out "$work/synthetic-test" --count 200 --seed 29 --size 512

init=$work/previous-default.safetensors
git show 5535676:weights/chestnet-compact-default.safetensors > "$init"
timed "$chestnode" train --preset real --data "$work/corpus" --data "$work/inserted-train" \
    --data "$work/inserted-validation" --data "$work/synthetic-train" \
    --exclude-source covidcxnet_covid --init "$init" --out "$work/model" 2>&1 |
    tee "$work/train.log"

manifest=$work/model/chestnet-compact-default.toml
timed "$chestnode" evaluate --data "$work/corpus" --split test --model "$manifest" \
    --out "$work/eval-real-test"
timed "$chestnode" evaluate --data "$work/corpus" --split test --include-pediatric \
    --model "$manifest" --out "$work/eval-real-test-with-children"
timed "$chestnode" evaluate --data "$work/inserted-test" --model "$manifest" \
    --out "$work/eval-inserted-test"
timed "$chestnode" evaluate --data "$work/synthetic-test" --model "$manifest" \
    --out "$work/eval-synthetic"
echo "model: $manifest; evaluations: $work/eval-*"
