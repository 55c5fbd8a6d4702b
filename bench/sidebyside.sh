#!/usr/bin/env bash
# hazgate beside Node-RED on the same farm, broker and workload, as a new user would
# compare them. The farm (bench/farm.py, pymodbus) serves 20 unit ids whose registers
# all change every second; each gateway polls every register once a second and
# publishes to a local Mosquitto (QoS 1):
#   Node-RED 4 + node-red-contrib-modbus 5.23.3: a client per unit, a read node per
#     125-register block, one message per block (the raw register array);
#   hazgate run: every register a point (scaled, quality-flagged, judged against an
#     alarm limit), spooled durably, published with publish_deadband_pct = 0.
# Systems alternate, REPS repetitions per workload; each run is measured over WINDOW s
# after WARMUP s: values/s arriving at the broker (a subscriber counts them), CPU from
# /proc/PID/task/*/schedstat, RSS (steady = at the end of the window, and its slope over the window)
# and the anonymous part of it (RssAnon: heap and stacks, without the program's own code
# and libraries, which are file pages the kernel can drop and read back).
#
#   bench/sidebyside.sh [WORKLOADS] [REPS] [WINDOW] [WARMUP]
#       WORKLOADS: registers per unit, comma-separated (default "500,2500" = 10k, 50k points)
#       SYSTEMS=hazgate (or node-red) runs one side only; TELEMETRY=readings sends
#       hazgate's self-describing telemetry instead of samples (v1.4, the default here);
#       POINTS=csv gives hazgate its points in a CSV point table instead of the TOML;
#       SYSTEMS="node-red hazgate floor" adds the bare polling floor: bench/floor.c, a
#       libmodbus poller making the same reads on one connection and doing nothing with
#       the values (its "values" are those polled; nothing reaches the broker).
#
# Builds the edge binary (--features edge, into target/edge; HAZGATE_BIN=path uses another).
# Installs Node-RED into bench/.node-red (npm) and uses the project's .venv pymodbus
# (tests/setup-peers.sh). Figures on a shared 2-core machine are noisy: read ranges.
set -euo pipefail
# The gateway's own build (what packaging/ installs), not the default one with the centre.
if [ -z "${HAZGATE_BIN:-}" ]; then
  (cd "$(dirname "$0")/.." && cargo build --release --quiet --no-default-features \
    --features edge --target-dir target/edge)
  HAZGATE_BIN=target/edge/release/hazgate
fi
source "$(dirname "$0")/lib.sh"
WORKLOADS=${1:-500,2500}
REPS=${2:-3}
WINDOW=${3:-60}
WARMUP=${4:-20}
SYSTEMS=${SYSTEMS:-node-red hazgate}
UNITS=20

[ -x .venv/bin/python ] || tests/setup-peers.sh
NR=bench/.node-red
if [[ " $SYSTEMS " == *" node-red "* ]] && [ ! -x "$NR/node_modules/.bin/node-red" ]; then
  echo "installing Node-RED 4 and node-red-contrib-modbus 5.23.3 into $NR …"
  mkdir -p "$NR"
  npm install --prefix "$NR" --no-audit --no-fund --silent node-red@4 node-red-contrib-modbus@5.23.3
fi

if [[ " $SYSTEMS " == *" floor "* ]]; then
  pkg-config --exists libmodbus 2>/dev/null || {
    echo "installing libmodbus-dev (Debian) for the floor poller …"
    DEBIAN_FRONTEND=noninteractive $([ "$(id -u)" -ne 0 ] && echo sudo) apt-get install -y -qq libmodbus-dev >/dev/null
  }
  gcc -O2 -o "$WORK/floor" bench/floor.c $(pkg-config --cflags --libs libmodbus)
fi

MQTT=$(free_port)
cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
max_queued_messages 0
log_dest none
CONF
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" & PIDS+=($!)
until mosquitto_sub -p "$MQTT" -t x -W 1 -C 1 -E >/dev/null 2>&1; do sleep 0.05; done

# CPU time in ns, over the process's threads (schedstat: exact, where /proc/PID/stat
# counts 10 ms ticks, too coarse for the floor's few ms a second).
ticks() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {print ns}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
HZ=1000000000

# Starts one system, warms up, measures, stops it; appends a JSON line to results.
measure() {
  local system=$1 regs=$2 rep=$3 dir="$WORK/run-$1-$2-$3" pid
  mkdir -p "$dir"
  cp "$WORK/cfg-$regs"/{site.toml,flows.json} "$dir/"
  [ -f "$WORK/cfg-$regs/points.csv" ] && cp "$WORK/cfg-$regs/points.csv" "$dir/"
  sed -i "s|$WORK/cfg-$regs|$dir|g" "$dir/site.toml"
  if [ "$system" = hazgate ]; then
    $BIN run --config "$dir/site.toml" --api off --no-watch --log-level warn 2> "$dir/log" &
    pid=$!
  elif [ "$system" = floor ]; then
    "$WORK/floor" 127.0.0.1 "$FARM" $UNITS "$regs" > /dev/null 2> "$dir/log" &
    pid=$!
  else
    node "$NR/node_modules/node-red/red.js" --userDir "$dir" --port "$(free_port)" \
      "$dir/flows.json" > "$dir/log" 2>&1 &
    pid=$!
  fi
  PIDS+=($pid)
  sleep 3
  local first_kb; first_kb=$(rss_kb $pid)
  sleep "$((WARMUP - 3))"
  # The subscriber counts what arrives in [t0, t0 + WINDOW], the span CPU is measured over.
  local t0; t0=$(python3 -c 'import time; print(time.time() + 2)')
  if [ "$system" = floor ]; then
    # Nothing published: every register polled once a second counts as delivered.
    (sleep "$WINDOW"; printf '{"window": %s, "messages": 0, "values": %s, "bytes": 0, "non_good": 0, "seq_gaps": 0}\n' \
      "$WINDOW" "$((regs * UNITS * WINDOW))" > "$dir/count.json") &
  else
    mosquitto_sub -p "$MQTT" -q 1 -v -t 'hazgate/#' -t 'farm/#' -W "$((WINDOW + 4))" 2>/dev/null \
      | python3 bench/count.py "$t0" "$((WINDOW))" "$((regs * UNITS))" > "$dir/count.json" &
  fi
  local counter=$!
  python3 -c "import time; time.sleep(max(0, $t0 - time.time()))"
  local c0 c1 t1 r1 samples=()
  c0=$(ticks $pid)
  for ((i = 0; i < WINDOW; i += 5)); do sleep 5; samples+=("$(rss_kb $pid)"); done
  c1=$(ticks $pid); t1=$(date +%s.%N); r1=$(rss_kb $pid); a1=$(anon_kb $pid)
  wait $counter 2>/dev/null || true
  kill -TERM $pid; wait $pid 2>/dev/null || true
  python3 - "$system" "$regs" "$rep" "$c0" "$c1" "$t0" "$t1" "$HZ" "$first_kb" "$r1" \
    "$a1" "${samples[*]}" "$dir/count.json" >> "$WORK/results.jsonl" <<'PY'
import json, sys
system, regs, rep, c0, c1, t0, t1, hz, first, r1, a1, samples, count = sys.argv[1:]
c = json.load(open(count))
wall = c["window"]
cpu = (float(c1) - float(c0)) / float(hz) * wall / (float(t1) - float(t0))
s = [int(x) for x in samples.split()]
n = len(s)
xs = [5 * (i + 1) for i in range(n)]
mx, my = sum(xs) / n, sum(s) / n
slope = sum((x - mx) * (y - my) for x, y in zip(xs, s)) / max(sum((x - mx) ** 2 for x in xs), 1)
print(json.dumps({"system": system, "points": int(regs) * 20, "rep": int(rep), "wall": wall,
                  "cpu_s": cpu, "first_kb": int(first), "rss_kb": int(r1), "anon_kb": int(a1),
                  "slope_kb_min": slope * 60, **c}))
PY
  tail -1 "$WORK/results.jsonl"
}

for regs in ${WORKLOADS//,/ }; do
  FARM=$(free_port)
  .venv/bin/python bench/farm.py --port "$FARM" --units $UNITS --regs "$regs" > "$WORK/farm-$regs.log" 2>&1 &
  PIDS+=($!)
  until grep -q READY "$WORK/farm-$regs.log"; do sleep 0.1; done
  python3 bench/sidebyside-configs.py --units $UNITS --regs "$regs" --modbus-port "$FARM" \
    --mqtt-port "$MQTT" --out "$WORK/cfg-$regs" --telemetry "${TELEMETRY:-samples}" \
    --points "${POINTS:-toml}"
  for ((rep = 1; rep <= REPS; rep++)); do
    for system in $SYSTEMS; do measure "$system" "$regs" "$rep"; done
  done
done

python3 - "$WORK/results.jsonl" "$WINDOW" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def rng(xs, f="{:.2f}"):
    lo, hi = min(xs), max(xs)
    return f.format(lo) if f.format(lo) == f.format(hi) else f"{f.format(lo)}–{f.format(hi)}"
print()
print("| workload | system | values/s at broker | CPU % of a core | CPU-s per M values | RSS steady MiB (first msg) | of it anonymous MiB | RSS slope MiB/min | seq gaps | non-good | complete seconds | bytes/value |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def complete(rs):
    """Seconds in which every point's reading arrived, of the seconds counted (samples)."""
    n = sum(r.get("seconds", 0) for r in rs)
    return f"{sum(r.get('exact_seconds', 0) for r in rs)}/{n}" if n else "–"
summary = {}
for points in sorted({r["points"] for r in rows}):
    for system in ("node-red", "hazgate", "floor"):
        rs = [r for r in rows if r["points"] == points and r["system"] == system]
        if not rs:
            continue
        vps = [r["values"] / r["wall"] for r in rs]
        cpu = [100 * r["cpu_s"] / r["wall"] for r in rs]
        per_m = [r["cpu_s"] / max(r["values"], 1) * 1e6 for r in rs]
        rss = [r["rss_kb"] / 1024 for r in rs]
        first = [r["first_kb"] / 1024 for r in rs]
        anon = [r["anon_kb"] / 1024 for r in rs]
        slope = [r["slope_kb_min"] / 1024 for r in rs]
        med = lambda xs: sorted(xs)[len(xs) // 2]
        summary[(points, system)] = (med(per_m), med(rss), med(anon))
        print(f"| {points // 1000}k points | {system} | {rng(vps, '{:,.0f}')} | {rng(cpu)} | {rng(per_m)} | "
              f"{rng(rss, '{:.0f}')} ({rng(first, '{:.0f}')}) | {rng(anon, '{:.1f}')} | {rng(slope)} | "
              f"{sum(r['seq_gaps'] for r in rs)} | {sum(r['non_good'] for r in rs)} | "
              f"{complete(rs)} | {sum(r['bytes'] for r in rs) / max(sum(r['values'] for r in rs), 1):.1f} |")
print()
for points in sorted({p for p, _ in summary}):
    if (points, "node-red") in summary and (points, "hazgate") in summary:
        n, h = summary[(points, "node-red")], summary[(points, "hazgate")]
        print(f"{points // 1000}k points: hazgate uses {n[0] / h[0]:.1f}× less CPU per value and "
              f"{n[1] / h[1]:.1f}× less memory ({n[2] / h[2]:.1f}× less anonymous) than Node-RED (medians)")
    if (points, "floor") in summary and (points, "hazgate") in summary:
        f, h = summary[(points, "floor")], summary[(points, "hazgate")]
        print(f"{points // 1000}k points: hazgate uses {h[0] / f[0]:.1f}× the CPU per value of the bare "
              f"polling floor")
PY
