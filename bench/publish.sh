#!/usr/bin/env bash
# Sustained publish rate to a local Mosquitto. The gateway polls 10,000 simulated points
# every second with a full snapshot every second (integrity_period_s = 1), so 10k
# readings/s enter the spool. The broker is absent for BACKLOG seconds, then started:
# the spooled backlog drains as fast as the uplink can publish (QoS 1, PUBACK-acked,
# each record removed from the spool on its PUBACK) while live telemetry keeps coming.
# A QoS 1 mosquitto_sub counts what arrives.
#
# Reports the drain rate (messages/s, readings/s, MB/s of payload), the gateway's CPU
# while draining, and the live rate after the drain.
#
#   bench/publish.sh [BACKLOG_SECONDS] [PROTOCOL]   (defaults: 60, 3.1.1; PROTOCOL 5 for MQTT 5)
#
# The spool is given 512 MiB so that nothing of the backlog is dropped.
#
# Needs tests/setup-peers.sh (mosquitto). Figures on a shared 2-core machine are noisy:
# quote medians of several runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
BACKLOG=${1:-60}
PROTOCOL=${2:-3.1.1}

MQTT=$(free_port)
python3 bench/gen-site.py --points 10000 --devices 20 --channels 4 > "$WORK/site.toml"
cat >> "$WORK/site.toml" <<CONF
[uplink]
host = "127.0.0.1"
port = $MQTT
protocol = "$PROTOCOL"
spool_path = "$WORK/spool.redb"
audit_path = "$WORK/audit.jsonl"
integrity_period_s = 1
spool_max_bytes = 536870912
CONF
$BIN check "$WORK/site.toml"

$BIN simulate --config "$WORK/site.toml" --log-level warn & PIDS+=($!)
sleep 1
$BIN run --config "$WORK/site.toml" --api off --no-watch --log-level warn 2> "$WORK/gw.log" & GW=$!; PIDS+=($GW)
echo "spooling ${BACKLOG} s of telemetry with the broker down …"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
sleep "$((BACKLOG - 5))"
# The gateway's CPU while it acquires and spools, to tell the drain's own cost apart.
B0=$(ticks $GW); sleep 5; B1=$(ticks $GW)

cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
max_queued_messages 0
log_dest file $WORK/mosquitto.log
CONF
BROKER_UP=$(date +%s.%N)
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" & PIDS+=($!)
until mosquitto_sub -p "$MQTT" -t x -W 1 -C 1 -E >/dev/null 2>&1; do sleep 0.05; done
mosquitto_sub -p "$MQTT" -q 1 -t 'hazgate/+/+/+/+/telemetry' -F '%U %p' > "$WORK/arrivals.txt" & PIDS+=($!)
C0=$(ticks $GW); T0=$(date +%s.%N)
echo "broker up; waiting for the backlog to drain …"

# Waits until no backlog message (created before the broker came up) arrived for 5 s,
# then reports. Backlog messages are told apart by their creation time `ts`.
python3 - "$WORK/arrivals.txt" "$BROKER_UP" "$GW" "$C0" "$T0" "$HZ" "$B0" "$B1" <<'PY'
import datetime, json, os, statistics, sys, time
path, up, gw = sys.argv[1], float(sys.argv[2]), sys.argv[3]
c0, t0, hz, b0, b1 = map(float, sys.argv[4:9])
baseline = (b1 - b0) / hz / 5  # cores used acquiring and spooling, before the drain
def ticks():
    f = open(f"/proc/{gw}/stat").read().split()
    return float(f[13]) + float(f[14])
backlog, live, seqs = [], [], set()
pos, last_backlog, cpu_end = 0, None, None
deadline = time.time() + 600
while time.time() < deadline:
    time.sleep(1)
    with open(path) as f:
        f.seek(pos)
        chunk = f.read()
    cut = chunk.rfind("\n") + 1
    pos += len(chunk[:cut].encode())
    for line in chunk[:cut].splitlines():
        at, payload = line.split(" ", 1)
        m = json.loads(payload)
        ts = datetime.datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp()
        rec = (float(at), len(m["readings"]), len(payload), m["seq"])
        seqs.add(m["seq"])
        if ts < up:
            backlog.append(rec)
            last_backlog = time.time()
            cpu_end = (ticks(), time.time())
        else:
            live.append(rec)
    if last_backlog and time.time() - last_backlog > 5 and live:
        break
if not backlog:
    sys.exit("no backlog arrived")
first, last = backlog[0][0], backlog[-1][0]
span = max(last - first, 1e-3)
msgs, reads, size = len(backlog), sum(r[1] for r in backlog), sum(r[2] for r in backlog)
extra = (cpu_end[0] - c0) / hz - baseline * (cpu_end[1] - t0)
lo, hi = min(seqs), max(seqs)
print(f"backlog: {msgs} messages, {reads} readings, {size / 1e6:.1f} MB of payload, spooled in the broker's absence")
print(f"drain: {span:.2f} s → {msgs / span:.0f} messages/s, {reads / span:.0f} readings/s, {size / span / 1e6:.1f} MB/s")
print(f"first backlog message {first - up:.1f} s after the broker came up (the gateway's reconnect back-off)")
print(f"gateway CPU: {baseline * 100:.1f} % of one core acquiring 10k points/s into the spool; "
      f"the drain cost {extra:.2f} core-seconds above that = {extra / reads * 1e6:.2f} core-s per million readings")
if len(live) > 2:
    live_span = live[-1][0] - live[0][0]
    print(f"live after the drain: {sum(r[1] for r in live[1:]) / max(live_span, 1e-3):.0f} readings/s")
print(f"telemetry seq {lo}..{hi}: {len(seqs)} received (other seqs are status/events on other topics)")
PY
kill -TERM $GW; wait $GW || true
grep -E "WARN|ERROR" "$WORK/gw.log" | grep -v "uplink connect failed" | head -5 || true
