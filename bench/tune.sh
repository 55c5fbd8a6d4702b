#!/usr/bin/env bash
# `hazgate tune` at the size the issue names: DAYS (30) of a 200-point site polled every
# second (≈ 518 M readings before report-by-exception), recorded by `hazgate simulate
# --record-days` (the simulator's noise, a slow leak, a chattering detector), then
# replayed for today's settings and two candidates. Prints the recording's size (bytes
# per stored reading), the replay's wall time and peak memory.
# Usage: bench/tune.sh [DAYS] [POINTS]; DEADBAND=0.5 sets the history's deadband_pct.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DAYS=${1:-30}
POINTS=${2:-200}
python3 bench/gen-site.py --points "$POINTS" --devices 4 --channels 1 > "$WORK/site.toml"
# Levels get limits; the gas detectors have GB/T 50493's defaults (20 / 40 %LEL).
sed -i 's/  unit = "%"/  unit = "%"\n  alarms = { h = 85.0, hh = 95.0, l = 10.0, ll = 5.0 }/' "$WORK/site.toml"
cat >> "$WORK/site.toml" <<TOML
[history]
path = "$WORK/history"
max_mib = 16384
max_age_days = 400
deadband_pct = ${DEADBAND:-0}
TOML
START=1790000000000
S=$((DAYS * 86400))
/usr/bin/time -f "record: %e s wall, %M KiB max RSS" "$BIN" --log-level warn simulate -c "$WORK/site.toml" \
  --scenario gas-leak --target F0-0 --start-after $((S / 3)) --ramp 7200 --recover-after 14400 \
  --record-days "$DAYS" --record-start "$START" \
  --record-pattern "chatter:F1-0:$((S / 2)):$((S / 2 + 3600)):19.7:1.0"
BYTES=$(du -sb "$WORK/history" | cut -f1)
cat > "$WORK/hh.toml" <<TOML
name = "HH above the leak"
[[points]]
id = "F0-0"
alarms = { hh = 49.5 }
TOML
/usr/bin/time -f "tune: %e s wall, %U s user, %M KiB max RSS" "$BIN" tune -c "$WORK/site.toml" \
  --from $((START + 3600000)) --to $((START + S * 1000)) \
  --set F1-0.deadband=3 --candidate "$WORK/hh.toml" --json "$WORK/r.json" > "$WORK/summary.txt"
python3 - "$WORK/r.json" "$BYTES" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); b = int(sys.argv[2])
print(f"readings replayed: {r['readings']:,}; history on disk: {b / 1e6:.1f} MB, {b / r['readings']:.2f} B per stored reading")
print(f"today: {r['today']['kpis']['site']['raised']} alarms; candidates: " + ", ".join(f"{c['name']}: {c['run']['kpis']['site']['raised']} alarms, {len(c['missed'])} missed" for c in r['candidates']))
PY
