#!/usr/bin/env bash
# Ingest benchmark: chestnode against DCMTK storescp.
#
# What is measured
#   Wall-clock time of ONE `storescu` process sending N copies of a 6 MB CR
#   image (../shared/data/dicom/wg04/RG3_UNC.dcm, explicit VR little endian,
#   each copy with its own SOP Instance UID) over one association on
#   127.0.0.1, to
#     - storescp  (DCMTK, single process, writes files, does NOT fsync), and
#     - chestnode (release build; fsyncs every instance and its sled index
#                  before answering success).
#   chestnode runs with --workers 0 (receive and queue only), so the
#   analysis of earlier images does not compete with ingest for the CPU.
#   Server start-up and shutdown are not timed; `sync` runs before each timed
#   send, and one untimed warm-up send to storescp precedes the repetitions.
#   Each peer gets a fresh output or data directory per repetition; the order
#   of the peers rotates from one repetition to the next. A run counts only
#   if storescu exits 0 and the peer holds exactly N instances afterwards
#   (files in storescp's output dir; `instances_received` from
#   `chestnode status --json`). The median of R repetitions is reported as
#   seconds, images/s and MB/s (MB = 1e6 bytes of the N input files).
#   Both peers receive PDUs of at most 131072 bytes: DCMTK's largest
#   (storescp --max-pdu 131072) and chestnode's default max_pdu_length, so
#   storescu sends the same PDUs to each.
#
#   Nagle: DCMTK 3.6.x leaves Nagle's algorithm on unless the environment
#   variable TCP_NODELAY=1 is set (or DCMTK was built with
#   DISABLE_NAGLE_ALGORITHM). With it on, each C-STORE exchange stalls on
#   delayed ACKs (~40 ms), and storescp's throughput measures that stall
#   rather than storing. So the main comparison runs storescu and storescp
#   with TCP_NODELAY=1 (storescu uses it towards chestnode too). A third row,
#   "storescp, DCMTK defaults", runs both without TCP_NODELAY for reference.
#
# How to run (from anywhere; paths are resolved from the repository root)
#   bash bench/ingest.sh [N]
#   N defaults to 100 (or $BENCH_N); repetitions R default to 3 ($BENCH_REPS).
#   Temporary files go to a `mktemp -d` directory (honours $TMPDIR) and are
#   removed on exit; the results are printed and also written as Markdown
#   to bench/out/ingest-<timestamp>.md (git-ignored).
#   Needs: cargo, python3, DCMTK (storescu, storescp, echoscu, dcmodify,
#   dcmdump). Disk: about 2 x N x 6.2 MB in the temp dir.

set -euo pipefail
set -o errtrace
trap 'echo "ingest.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
export LC_ALL=C
unset CHESTNODE_CONFIG # use chestnode's built-in defaults plus the flags below

N="${1:-${BENCH_N:-100}}"
R="${BENCH_REPS:-3}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOURCE="$ROOT/../shared/data/dicom/wg04/RG3_UNC.dcm"
BIN="$ROOT/target/release/chestnode"

die() { echo "ingest.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[[ "$R" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer, got '$R'"
[[ -f "$SOURCE" ]] || die "source image not found: $SOURCE"
for tool in cargo python3 git storescu storescp echoscu dcmodify dcmdump; do
    command -v "$tool" >/dev/null || die "'$tool' not found in PATH"
done

# --- servers and cleanup -----------------------------------------------------

WORK=""
SERVER_PID=""
SERVER_KIND=""

# Stops the running server, if any. chestnode gets SIGTERM and is waited for
# (SIGKILL after 60 s); storescp is simply killed. Returns chestnode's exit
# status (0 for storescp).
stop_server() {
    local pid="$SERVER_PID" kind="$SERVER_KIND" rc=0 i
    SERVER_PID=""
    SERVER_KIND=""
    [[ -n "$pid" ]] || return 0
    if [[ "$kind" == chestnode ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 600; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "ingest.sh: chestnode (pid $pid) ignored SIGTERM for 60 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || rc=$?
    else
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    return "$rc"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server || true
    [[ -n "$WORK" && -d "$WORK" ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until the peer answers a C-ECHO (a plain TCP probe would show up in
# chestnode's log as an aborted association).
wait_ready() { # AE PORT LOGFILE
    local ae="$1" port="$2" logfile="$3" i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$logfile" >&2
            die "$SERVER_KIND exited before accepting associations"
        fi
        echoscu -aec "$ae" 127.0.0.1 "$port" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$logfile" >&2
    die "$SERVER_KIND did not answer C-ECHO on port $port within 30 s"
}

# --- build -------------------------------------------------------------------

log "building chestnode (cargo build --release)"
(cd "$ROOT" && cargo build --release)
[[ -x "$BIN" ]] || die "no binary at $BIN after the build"

# --- input files -------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chestnode-bench.XXXXXX")"
mkdir -p "$WORK/in"

log "preparing $N copies of $(basename "$SOURCE") in $WORK/in"
# 2.25.<UUID as a decimal integer>: at most 44 characters, no leading zeros.
mapfile -t UIDS < <(python3 -c 'import sys, uuid; [print("2.25.%d" % uuid.uuid4().int) for _ in range(int(sys.argv[1]))]' "$N")
((${#UIDS[@]} == N)) || die "could not generate $N UIDs"
FILES=()
for ((i = 0; i < N; i++)); do
    f="$WORK/in/img$(printf '%05d' "$i").dcm"
    cp "$SOURCE" "$f"
    chmod u+w "$f"
    # Setting (0008,0018) also updates (0002,0003) in the meta header
    # (dcmodify cannot address meta header tags with -m).
    dcmodify -q -nb -m "(0008,0018)=${UIDS[i]}" "$f"
    FILES+=("$f")
done

# Check that every file has distinct, matching SOP / Media Storage UIDs.
dcmdump -q +P 0002,0003 +P 0008,0018 "${FILES[@]}" | python3 -c '
import re, sys
n = int(sys.argv[1])
pairs = re.findall(r"\((0002,0003|0008,0018)\) UI \[([0-9.]+)\]", sys.stdin.read())
meta = [v for t, v in pairs if t == "0002,0003"]
sop = [v for t, v in pairs if t == "0008,0018"]
ok = len(meta) == len(sop) == n and meta == sop and len(set(sop)) == n \
    and all(len(u) <= 64 and re.fullmatch(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*", u) for u in sop)
sys.exit(0 if ok else "input files do not carry %d distinct, matching, valid UIDs" % n)
' "$N"

TOTAL_BYTES=$(stat -c %s "${FILES[@]}" | awk '{ s += $1 } END { print s }')
FILE_BYTES=$(wc -c <"${FILES[0]}")

# --- measurements ------------------------------------------------------------

# The run_* and time_storescu functions run in the main shell (never in
# $(...)), so that the EXIT trap sees SERVER_PID; they return seconds in SECS.
SECS=""

# Environment of the DCMTK processes; each run_* sets it before starting.
DCMTK_ENV=()
NODELAY_ENV=(TCP_NODELAY=1)
DEFAULT_ENV=(-u TCP_NODELAY)

# Sends all files in one storescu process; sets SECS to the elapsed seconds.
time_storescu() { # AE PORT LOGFILE
    local ae="$1" port="$2" logfile="$3" t0 t1 rc=0
    # Start with no dirty pages, so that writeback of the input files or of
    # the previous run's output does not land in this measurement.
    sync
    t0=$EPOCHREALTIME
    env "${DCMTK_ENV[@]}" storescu -aec "$ae" 127.0.0.1 "$port" "${FILES[@]}" >"$logfile" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail -n 20 "$logfile" >&2
        die "storescu to $ae exited with status $rc"
    fi
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

run_storescp() { # REP nodelay|default; sets SECS
    local rep="$1" mode="$2" port out logfile count
    if [[ "$mode" == nodelay ]]; then
        DCMTK_ENV=("${NODELAY_ENV[@]}")
    else
        DCMTK_ENV=("${DEFAULT_ENV[@]}")
    fi
    port=$(free_port)
    out="$WORK/storescp-$mode-$rep"
    logfile="$WORK/storescp-$mode-$rep.log"
    mkdir -p "$out"
    env "${DCMTK_ENV[@]}" storescp --max-pdu 131072 -od "$out" -aet STORESCP "$port" >"$logfile" 2>&1 &
    SERVER_PID=$!
    SERVER_KIND=storescp
    wait_ready STORESCP "$port" "$logfile"
    time_storescu STORESCP "$port" "$WORK/storescu-storescp-$mode-$rep.log"
    stop_server
    count=$(find "$out" -type f | wc -l)
    ((count == N)) || die "storescp ($mode) run $rep: $count files received, expected $N"
    rm -rf "$out"
}

run_chestnode() { # REP; sets SECS
    local rep="$1" port data logfile count rc=0
    DCMTK_ENV=("${NODELAY_ENV[@]}")
    port=$(free_port)
    data="$WORK/chestnode-$rep"
    logfile="$WORK/chestnode-$rep.log"
    mkdir -p "$data"
    "$BIN" serve --data-dir "$data" --port "$port" --min-free-mb 1 --workers 0 >"$logfile" 2>&1 &
    SERVER_PID=$!
    SERVER_KIND=chestnode
    wait_ready CHESTNODE "$port" "$logfile"
    time_storescu CHESTNODE "$port" "$WORK/storescu-chestnode-$rep.log"
    count=$("$BIN" status --json --data-dir "$data" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["instances_received"])')
    stop_server || rc=$?
    if ((rc != 0)); then
        tail -n 20 "$logfile" >&2
        die "chestnode run $rep: server exited with status $rc after SIGTERM"
    fi
    ((count == N)) || die "chestnode run $rep: instances_received is $count, expected $N"
    rm -rf "$data"
}

STORESCP_TIMES=()
DEFAULT_TIMES=()
CHESTNODE_TIMES=()
PEERS=(storescp chestnode storescp-defaults)
# One untimed send first: the first run after preparing the inputs is
# consistently slower (cold caches), whichever peer it goes to.
log "warm-up (not counted): storescp"
run_storescp 0 nodelay
log "  warm-up: $SECS s"
for ((rep = 1; rep <= R; rep++)); do
    # Rotate the order, so that no peer always runs first or last.
    for ((k = 0; k < ${#PEERS[@]}; k++)); do
        peer=${PEERS[(k + rep - 1) % ${#PEERS[@]}]}
        log "repetition $rep/$R: $peer"
        case "$peer" in
        storescp)
            run_storescp "$rep" nodelay
            STORESCP_TIMES+=("$SECS")
            ;;
        storescp-defaults)
            run_storescp "$rep" default
            DEFAULT_TIMES+=("$SECS")
            ;;
        chestnode)
            run_chestnode "$rep"
            CHESTNODE_TIMES+=("$SECS")
            ;;
        esac
        log "  $peer: $SECS s"
    done
done

# --- results -----------------------------------------------------------------

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }

SCP_MED=$(median "${STORESCP_TIMES[@]}")
CN_MED=$(median "${CHESTNODE_TIMES[@]}")
SCP_IPS=$(calc %.1f "$N / $SCP_MED")
CN_IPS=$(calc %.1f "$N / $CN_MED")
SCP_MBS=$(calc %.1f "$TOTAL_BYTES / 1e6 / $SCP_MED")
CN_MBS=$(calc %.1f "$TOTAL_BYTES / 1e6 / $CN_MED")
RATIO=$(calc %.2f "$SCP_MED / $CN_MED") # = chestnode images/s / storescp images/s
DEF_MED=$(median "${DEFAULT_TIMES[@]}")
DEF_IPS=$(calc %.1f "$N / $DEF_MED")
DEF_MBS=$(calc %.1f "$TOTAL_BYTES / 1e6 / $DEF_MED")
RATIO_DEF=$(calc %.2f "$DEF_MED / $CN_MED")

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    COMMIT="$COMMIT (plus uncommitted changes in src/ or Cargo files)"
fi
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
FS=$(df -T "$WORK" | awk 'NR == 2 { print $2 " (" $1 ", mounted on " $7 ")" }')
DCMTK=$(storescu --version | awk 'NR == 1') # not head: SIGPIPE + pipefail
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

REPORT=$(
    cat <<EOF
# chestnode ingest benchmark, $STAMP

$N images of $(basename "$SOURCE") (about $FILE_BYTES bytes each; UIDs differ in length), $TOTAL_BYTES bytes in all,
one storescu process, one association over 127.0.0.1; median of $R repetitions.

| peer | median s | images/s | MB/s | runs (s) |
|---|---:|---:|---:|---|
| storescp (no fsync; TCP_NODELAY=1) | $SCP_MED | $SCP_IPS | $SCP_MBS | ${STORESCP_TIMES[*]} |
| chestnode (fsync; storescu with TCP_NODELAY=1) | $CN_MED | $CN_IPS | $CN_MBS | ${CHESTNODE_TIMES[*]} |
| storescp, DCMTK defaults (Nagle on; reference) | $DEF_MED | $DEF_IPS | $DEF_MBS | ${DEFAULT_TIMES[*]} |

chestnode images/s / storescp images/s: **$RATIO**
(against storescp with DCMTK defaults: $RATIO_DEF)

| | |
|---|---|
| git commit | $COMMIT |
| nproc | $(nproc) |
| CPU | $CPU |
| temp dir file system | $FS |
| DCMTK | $DCMTK |
| rustc | $(rustc --version 2>/dev/null || echo unknown) |
EOF
)

mkdir -p "$ROOT/bench/out"
OUTFILE="$ROOT/bench/out/ingest-$STAMP.md"
printf '%s\n' "$REPORT" >"$OUTFILE"
echo
printf '%s\n' "$REPORT"
echo
echo "written to ${OUTFILE#"$ROOT"/}"
