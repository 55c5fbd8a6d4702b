#!/usr/bin/env bash
# Acquisition load benchmark: the simulator serves 10,000 points over 20 devices
# (4 Modbus TCP channels) and `hazgate run` polls them every second. Reports achieved
# readings/s, the gateway's CPU % of one core, its peak RSS, and poll-start jitter.
#
#   bench/acquire.sh [SECONDS]        (default 60; the first 10 s are warm-up)
#   HISTORY=1 bench/acquire.sh …      the same with `[history]` kept (every change,
#                                     a snapshot a minute, 5 s commits): also reports
#                                     the history's bytes per stored reading
#
# Numbers on a shared 2-core machine are noisy: run it several times and quote medians.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
WARMUP=10
WORK=$(mktemp -d)
trap 'kill $SIM $GW 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

# HAZGATE_BIN=path compares another build (nothing is built then).
if [ -n "${HAZGATE_BIN:-}" ]; then BIN=$HAZGATE_BIN; else
  cargo build --release --quiet
  BIN=target/release/hazgate
fi
python3 bench/gen-site.py --points 10000 --devices 20 --channels 4 > "$WORK/site.toml"
if [ -n "${HISTORY:-}" ]; then printf '\n[history]\npath = "%s/history"\n' "$WORK" >> "$WORK/site.toml"; fi
$BIN check "$WORK/site.toml"

$BIN simulate --config "$WORK/site.toml" --log-level warn &
SIM=$!
sleep 1
$BIN run --config "$WORK/site.toml" --stats-interval 5 --log-format json --log-level info 2> "$WORK/gw.log" &
GW=$!

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Per thread, by name: "name|ns on a CPU" lines (schedstat: exact, where the ticks of
# /proc/PID/stat count in 10 ms steps).
thread_ns() {
  for t in /proc/"$1"/task/*; do
    echo "$(cat "$t/comm")|$(cut -d' ' -f1 "$t/schedstat")"
  done 2>/dev/null
}
HZ=$(getconf CLK_TCK)
sleep "$WARMUP"
thread_ns $GW > "$WORK/threads0"
T0=$(date +%s.%N); C0=$(ticks $GW); SIM_C0=$(ticks $SIM)
START_LINE=$(wc -l < "$WORK/gw.log")
sleep "$((DURATION - WARMUP))"
T1=$(date +%s.%N); C1=$(ticks $GW); SIM_C1=$(ticks $SIM)
thread_ns $GW > "$WORK/threads1"
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$GW/status"); NOW_KB=$(awk '/VmRSS/ {print $2}' "/proc/$GW/status")
kill -TERM $GW; wait $GW || true

python3 - "$WORK/gw.log" "$START_LINE" "$T0" "$T1" "$C0" "$C1" "$SIM_C0" "$SIM_C1" "$HZ" "$RSS_KB" "$NOW_KB" "$WORK/threads0" "$WORK/threads1" <<'PY'
import collections, json, statistics, sys
log, start, t0, t1, c0, c1, s0, s1, hz, rss, now, th0, th1 = sys.argv[1:]
lines = open(log).read().splitlines()[int(start):]
windows = []
for l in lines:
    try:
        j = json.loads(l)
    except ValueError:
        continue
    f = j.get("fields", {})
    if f.get("message") == "acquisition stats" and f.get("window_s", 0) > 0:
        windows.append(f)
wall = float(t1) - float(t0)
cpu = (float(c1) - float(c0)) / float(hz) / wall * 100
sim_cpu = (float(s1) - float(s0)) / float(hz) / wall * 100
if len(windows) < 2:
    sys.exit("not enough stats windows; run longer")
reads = [(b["readings"] - a["readings"]) / b["window_s"] for a, b in zip(windows, windows[1:])]
good = [(b["good_readings"] - a["good_readings"]) / b["window_s"] for a, b in zip(windows, windows[1:])]
p50 = statistics.median(w["jitter_p50_us"] for w in windows)
p99 = statistics.median(w["jitter_p99_us"] for w in windows)
print(f"points: 10000 over 20 devices, 4 TCP channels, 1 s poll; measured {wall:.0f} s")
print(f"readings/s (median of 5 s windows): {statistics.median(reads):.0f}  (good: {statistics.median(good):.0f})")
print(f"gateway CPU: {cpu:.2f} % of one core   (simulator: {sim_cpu:.1f} %)")
def by_name(path):
    out = collections.Counter()
    for line in open(path):
        name, _, t = line.rstrip("\n").rpartition("|")
        out[name] += int(t)
    return out
a, b = by_name(th0), by_name(th1)
per = ", ".join(f"{n} {(b[n] - a[n]) / 1e9 / wall * 100:.3f}" for n in sorted(b) if b[n] > a[n])
print(f"gateway CPU by thread (% of one core): {per}")
print(f"gateway RSS: {int(now) / 1024:.1f} MiB steady, {int(rss) / 1024:.1f} MiB peak (VmHWM, includes loading the site file)")
print(f"poll-start jitter: p50 {p50 / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms (median over windows)")
PY
if [ -n "${HISTORY:-}" ]; then
  BYTES=$(du -sb "$WORK/history" | cut -f1)
  STORED=$($BIN export --config "$WORK/site.toml" --from 0 --format jsonl | grep -c '"type":"reading"' || true)
  python3 -c "import sys; b, n = int(sys.argv[1]), int(sys.argv[2]); print(f'history: {n} readings stored in {b} bytes on disk: {b / max(n, 1):.2f} bytes per stored reading')" "$BYTES" "$STORED"
fi
