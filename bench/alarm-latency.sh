#!/usr/bin/env bash
# End-to-end alarm latency: a Modbus master (pymodbus) writes a register in the
# simulator (forcing the interlock-bypass bit BP-101 on and off), and a subscriber on a
# local Mosquitto timestamps the alarm message. Reports p50 / p99 of write → arrival at
# a 1 s poll (the SIS device's poll interval is set to 1000 ms for this run).
#
#   bench/alarm-latency.sh [ROUNDS]      (default 30: 60 alarm events, ~3 min)
#
# Needs tests/setup-peers.sh (mosquitto, socat, pymodbus). Figures on a shared 2-core
# machine are noisy: quote medians of several runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-30}

MQTT=$(free_port); MODBUS=$(free_port)

cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
log_dest file $WORK/mosquitto.log
CONF
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" & PIDS+=($!)
socat pty,raw,echo=0,link="$WORK/ttyA" pty,raw,echo=0,link="$WORK/ttyB" & PIDS+=($!)
sleep 0.5

sed -e "s/port = 15020/port = $MODBUS/" -e "s|/tmp/hazgate/ttyA|$WORK/ttyA|" \
    -e '/id = "SIS-1"/,/timeout_ms/ s/poll_interval_ms = 500 .*/poll_interval_ms = 1000/' \
    firmware-config/demo-site.toml > "$WORK/site.toml"
cat >> "$WORK/site.toml" <<CONF
[uplink]
host = "127.0.0.1"
port = $MQTT
spool_path = "$WORK/spool.redb"
audit_path = "$WORK/audit.jsonl"
CONF
$BIN check "$WORK/site.toml"

mosquitto_sub -p "$MQTT" -t 'hazgate/+/+/+/+/alarm' -F '%U %p' > "$WORK/arrivals.txt" & PIDS+=($!)
$BIN simulate --config "$WORK/site.toml" --serve "rs485-1=$WORK/ttyB" --log-level warn & PIDS+=($!)
$BIN run --config "$WORK/site.toml" --api off --log-level warn 2> "$WORK/gw.log" & PIDS+=($!)
sleep 4

# Writes alternate 1 / 0 to holding register 10 of unit 2 (BP-101 is bit 0) every 2.5 s,
# i.e. at a random phase of the 1 s poll, logging the write time.
.venv/bin/python - "$MODBUS" "$ROUNDS" "$WORK/writes.txt" <<'PY'
import sys, time
from pymodbus.client import ModbusTcpClient
port, rounds, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = ModbusTcpClient("127.0.0.1", port=port)
c.connect()
with open(out, "w") as f:
    for i in range(rounds * 2):
        v = 1 if i % 2 == 0 else 0
        t = time.time()
        r = c.write_register(10, v, device_id=2)
        assert not r.isError(), r
        f.write(f"{t} {v}\n"); f.flush()
        time.sleep(2.5 + (i % 7) * 0.13)
c.close()
PY
sleep 3

python3 - "$WORK/writes.txt" "$WORK/arrivals.txt" <<'PY'
import json, statistics, sys
writes = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
lat = []
for line in open(sys.argv[2]):
    t, payload = line.split(" ", 1)
    m = json.loads(payload)
    a = m.get("alarm", {})
    if a.get("point") != "BP-101" or a.get("action") not in ("raised", "cleared"):
        continue
    t = float(t)
    before = [w for w in writes if w[0] <= t]
    if before:
        lat.append((t - before[-1][0]) * 1000)
lat.sort()
if len(lat) < 4:
    sys.exit(f"only {len(lat)} alarm events matched")
p = lambda q: lat[min(len(lat) - 1, round(q * (len(lat) - 1)))]
print(f"alarm events: {len(lat)} (of {len(writes)} register writes) at a 1 s poll")
print(f"write → alarm message at subscriber: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {lat[-1]:.0f} ms")
print(f"target: p99 ≤ poll interval + 20 ms = 1020 ms")
PY
