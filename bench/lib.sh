# Shared by the bench scripts: a scratch directory and background processes that are
# cleaned up on exit, a free loopback port, and the release binary.
# Usage: `source "$(dirname "$0")/lib.sh"` after `set -euo pipefail`.
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# HAZGATE_BIN=path compares another build (nothing is built then).
if [ -n "${HAZGATE_BIN:-}" ]; then BIN=$HAZGATE_BIN; else
  cargo build --release --quiet
  BIN=target/release/hazgate
fi
