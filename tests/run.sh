#!/usr/bin/env bash
# The project's test command (README): installs the real peers, then runs the lint
# gates, every test, compiles the benchmarks and the fuzz target, and tests the package
# and the ARM build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-peers.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# Each half (edge, centre) builds alone; the edge carries no centre dependency.
bash tests/seam.sh
# Benchmarks and the fuzz target must keep compiling (running them is not a test).
cargo bench --no-run --quiet
cargo check --quiet --manifest-path fuzz/Cargo.toml
# The gateway as shipped: the .deb installed and run under systemd in a Debian 12 root,
# and the aarch64 and armv7 builds run under qemu-user (all against the simulator).
cargo build --quiet
bash packaging/test-deb.sh
bash packaging/test-arm.sh aarch64-unknown-linux-gnu
bash packaging/test-arm.sh armv7-unknown-linux-gnueabihf

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --lib --bins --tests 2>&1 | tee "$log"
# One closing line over every test binary, so a reader of the last line sees the total.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"
