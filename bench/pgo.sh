#!/usr/bin/env bash
# The edge build laid out by profile (PGO): an instrumented build runs the gateway's
# steady state (bench/sidebyside.sh at 10,000 points) and its alarm path
# (bench/alarm-latency.sh), then the build is made again with that profile. LLVM puts
# what ran apart from what did not (.text.hot / .text.unlikely). The kernel maps code
# 64 KiB around each page faulted in, so spread-out code kept 5 MB of program pages
# resident for 1.7 MB that runs (docs/performance.md).
#
#   bench/pgo.sh            -> target/pgo/release/hazgate (then compare it with
#                              HAZGATE_BIN=target/pgo/release/hazgate bench/sidebyside.sh …)
#
# Needs llvm-profdata of rustc's LLVM major version (Debian: llvm-<N>) and
# tests/setup-peers.sh. Takes two release builds and about three minutes of runs.
set -euo pipefail
cd "$(dirname "$0")/.."
major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
PROFDATA=$(command -v "llvm-profdata-$major" || true)
if [ -z "$PROFDATA" ]; then
  echo "bench/pgo.sh: llvm-profdata-$major (rustc's LLVM $major) not found; apt install llvm-$major" >&2
  exit 1
fi
PROF=$(mktemp -d)
trap 'rm -rf "$PROF"' EXIT
build() { # RUSTFLAGS TARGET_DIR
  RUSTFLAGS="$1" cargo build --release --quiet --no-default-features --features edge --target-dir "$2"
}
build "-Cprofile-generate=$PROF" target/pgo-gen
# Every process of the instrumented build writes its own profile on a clean exit.
export LLVM_PROFILE_FILE="$PROF/%m_%p.profraw"
HAZGATE_BIN=target/pgo-gen/release/hazgate SYSTEMS=hazgate POINTS=csv bash bench/sidebyside.sh 500 1 40 10 >/dev/null
HAZGATE_BIN=target/pgo-gen/release/hazgate bash bench/alarm-latency.sh 5 >/dev/null
unset LLVM_PROFILE_FILE
ls "$PROF"/*.profraw >/dev/null 2>&1 || { echo "bench/pgo.sh: the training runs wrote no profile" >&2; exit 1; }
"$PROFDATA" merge -o "$PROF/merged.profdata" "$PROF"/*.profraw
build "-Cprofile-use=$PROF/merged.profdata -Cllvm-args=-pgo-warn-missing-function=false" target/pgo
echo "bench/pgo.sh: target/pgo/release/hazgate ($(stat -c %s target/pgo/release/hazgate) bytes)"
