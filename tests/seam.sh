#!/usr/bin/env bash
# The edge / centre seam (docs/architecture.md): each half builds on its own, lint-clean,
# and the gateway's build carries none of the centre's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
for half in edge centre; do
  cargo clippy --quiet --no-default-features --features "$half" -- -D warnings
done
# What only the centre needs: its time-series client (and that client's HTTP stack) and
# the JSON-Schema validator of the dead-letter diagnosis.
tree=$(cargo tree --no-default-features --features edge -e normal --prefix none)
bad=$(grep -E '^(influxdb2|jsonschema|reqwest|referencing|fancy-regex) ' <<<"$tree" | sort -u || true)
if [[ -n "$bad" ]]; then
  echo "the edge build depends on centre crates:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "seam: edge build has $(sort -u <<<"$tree" | wc -l) crates, none of the centre's"
