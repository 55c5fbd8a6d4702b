#!/usr/bin/env bash
# Peak memory and time of `hazgate check` on a large site, its points written in the
# site file (TOML) and the same points in a CSV point table (`points_csv`).
# Usage: bench/check-rss.sh [POINTS]   (default 50000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
POINTS=${1:-50000}
python3 bench/gen-site.py --points "$POINTS" > "$WORK/site.toml"
"$BIN" points export --config "$WORK/site.toml" --out "$WORK/points.csv"
# The same site with its points moved to the table.
python3 - "$WORK" <<'PY'
import sys
work = sys.argv[1]
text = open(f"{work}/site.toml").read()
head = text[:text.find("  [[hazard_sources.points]]")]
open(f"{work}/site-csv.toml", "w").write('points_csv = "points.csv"\n' + head)
PY
measure() {
  /usr/bin/time -f "%M %e" "$BIN" check "$1" 2>&1 >/dev/null | tail -1
}
printf "%-34s %12s %10s %14s\n" "site ($POINTS points)" "file bytes" "peak MiB" "seconds"
for f in site.toml site-csv.toml; do
  read -r kb secs < <(measure "$WORK/$f")
  bytes=$(stat -c %s "$WORK/$f")
  [ "$f" = site-csv.toml ] && bytes="$bytes+$(stat -c %s "$WORK/points.csv")"
  label=$([ "$f" = site.toml ] && echo "points in the TOML" || echo "points in a CSV table")
  printf "%-34s %12s %10.1f %14s\n" "$label" "$bytes" "$(echo "$kb / 1024" | bc -l)" "$secs"
done
