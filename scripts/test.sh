#!/usr/bin/env bash
# Runs the test suite on a fresh Debian machine: installs the real DICOM
# peers the tests drive (DCMTK, dicom3tools, Orthanc as the PACS, highdicom as
# an independent SR reader, pynetdicom as a second SCU) and the build tools,
# then runs the tests. Test data is read from ../shared/data (or
# $CHESTNODE_TEST_DATA).
#
#   bash scripts/test.sh          unit tests, the fuzz corpus and the
#                                 integration tiers inproc:: and peers::
#   bash scripts/test.sh --soak   the soak tier only (load, crash recovery,
#                                 training, evaluation; ignored by default)
#   bash scripts/test.sh --all    both
#
# Tiers and where tests go: tests/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

everyday=true
soak=false
case "${1:-}" in
    "") ;;
    --soak) everyday=false; soak=true ;;
    --all) soak=true ;;
    *) echo "usage: $0 [--soak | --all]" >&2; exit 2 ;;
esac

# What the build needs (cmake for libjpeg-turbo and CharLS; OpenSSL's
# headers and pkg-config for libssh2) is installed first; the test peers are
# installed while the tests compile, which on a fresh machine hides most of
# the download and unpacking behind the build.
build_need=()
command -v cmake >/dev/null 2>&1 || build_need+=(cmake)
[ -e /usr/include/openssl/ssl.h ] || build_need+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || build_need+=(pkg-config)

need=()
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
# The TLS tests make their certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Research delivery: exports are tested against the age CLI and OpenSSH's
# sshd and sftp.
command -v age >/dev/null 2>&1 || need+=(age)
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v sftp >/dev/null 2>&1 || need+=(openssh-client)
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || need+=(python3-pip)
# Headless Chromium for the browser annotator's test (selenium drives it).
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)

apt_install() {
    echo "installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ $((${#build_need[@]} + ${#need[@]})) -gt 0 ]; then apt-get update -qq; fi
if [ ${#build_need[@]} -gt 0 ]; then apt_install "${build_need[@]}"; fi

# Compile the tests in the background while the peers install.
build_pid=
trap 'if [ -n "$build_pid" ]; then kill "$build_pid" 2>/dev/null || true; fi' EXIT
if $everyday; then
    cargo test --locked --no-run &
    build_pid=$!
fi
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi

if ! python3 -c "import highdicom, pynetdicom, selenium" >/dev/null 2>&1; then
    echo "installing: highdicom, pynetdicom, selenium (pip)"
    python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
        || python3 -m pip install --quiet --break-system-packages -r tests/python/requirements.txt
fi
if [ -n "$build_pid" ]; then wait "$build_pid"; build_pid=; fi

# pynetdicom installs its own storescu, echoscu, storescp, findscu, getscu and
# movescu, which may come ahead of DCMTK's on PATH (a pyenv shim does). The
# tests drive DCMTK's, so for this run put links to DCMTK's own first on
# PATH; nothing outside target/ is changed.
dcmtk_dir=$(dirname "$(command -v dcmdump)")
mkdir -p target/dcmtk-bin
for tool in storescu storescp echoscu findscu getscu movescu; do
    if [ -x "$dcmtk_dir/$tool" ]; then ln -sfn "$dcmtk_dir/$tool" "target/dcmtk-bin/$tool"; fi
done
export PATH="$PWD/target/dcmtk-bin:$PATH"
# Check storescu is DCMTK's. (The output is read whole: `grep -q` under
# pipefail could stop the pipe early and fail the check at random.)
storescu_version=$(storescu --version 2>&1 || true)
if [[ "$storescu_version" != *dcmtk* ]]; then
    echo "storescu on PATH ($(command -v storescu)) is not DCMTK's: put DCMTK's first on PATH" >&2
    exit 1
fi

if $everyday; then
    # Everything but the soak tier, whose tests are #[ignore = "soak: ..."].
    cargo test --locked
fi
if $soak; then
    # One at a time, as when each was its own binary: crash recovery and load
    # measure timing and memory, which a neighbour would disturb.
    cargo test --locked --test it soak:: -- --ignored --test-threads=1
fi
