#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/) for a fixed time with libFuzzer,
# then prints the executions per target. Not part of CI: it needs the nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
#   seconds-per-target  default 300
#   target              default: pdu dimse_command dataset pixel_pipeline
#
# Seeds: tests/fuzz_corpus/<target>/ (committed, read-only here) and, for the
# dataset and pixel_pipeline targets, the small files of ../shared/data/dicom
# (or $CHESTNODE_TEST_DATA/dicom) when present. New inputs collect in
# fuzz/corpus/<target>/, logs in fuzz/logs/ (both ignored by git). Crash,
# timeout and out-of-memory inputs are copied into tests/fuzz_corpus/<target>/
# under libFuzzer's names (crash-*, timeout-*, oom-*), where
# tests/fuzz_corpus.rs replays them; commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pdu dimse_command dataset pixel_pipeline)
fi
data=${CHESTNODE_TEST_DATA:-../shared/data}
# Shared files small enough to mutate and decode quickly (bytes).
max_seed_bytes=140000

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz (nightly) is needed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

# -a: debug assertions, so arithmetic overflow is a finding too.
cargo +nightly fuzz build -a

mkdir -p fuzz/logs
summary=()
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    # Earlier findings were copied out already; count only this run's.
    rm -f fuzz/artifacts/"$target"/*
    dirs=("$corpus" "tests/fuzz_corpus/$target")
    if [ "$target" = dataset ] || [ "$target" = pixel_pipeline ]; then
        if [ -d "$data/dicom" ]; then
            shared=fuzz/corpus/shared-dicom
            mkdir -p "$shared"
            # Not the JPEG 2000 files: openjp2 0.6.1 frees null pointers when
            # it tears a decoder down after a partial decode, which the debug
            # assertions abort on at once (a dependency bug, see the issue).
            find "$data/dicom" -name '*.dcm' -not -name '*J2K*' \
                -size -"${max_seed_bytes}"c -exec cp -f {} "$shared/" \;
            chmod u+w "$shared"/* 2>/dev/null || true
            dirs+=("$shared")
        fi
    fi
    log=fuzz/logs/$target.log
    echo "== $target: ${seconds}s, seeds from ${dirs[*]:1}"
    started=$(date +%s)
    set +e
    cargo +nightly fuzz run -a "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - started))
    executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    if [ -z "$executions" ]; then
        # No final stats (the run stopped on a finding): the last status line.
        executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    found=0
    for artifact in fuzz/artifacts/"$target"/{crash,timeout,oom,leak}-*; do
        [ -e "$artifact" ] || continue
        cp -f "$artifact" "tests/fuzz_corpus/$target/"
        found=$((found + 1))
        echo "   finding: tests/fuzz_corpus/$target/$(basename "$artifact")"
    done
    result=$([ $status -eq 0 ] && echo "clean" || echo "STOPPED (exit $status), see $log")
    summary+=("$(printf '%-16s %6ss %12s executions  %s findings  %s' \
        "$target" "$elapsed" "${executions:-?}" "$found" "$result")")
done

echo
echo "target            time   executions"
printf '%s\n' "${summary[@]}"
