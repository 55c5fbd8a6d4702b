#!/usr/bin/env bash
# The project's test command (README): installs the real peers, then runs every test,
# and the lint gates CI holds the code to.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-peers.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# Doc tests run separately (--all-targets skips them).
cargo test --doc
# The fuzz target must keep compiling (running it needs nightly: see README).
cargo check --quiet --manifest-path fuzz/Cargo.toml
