#!/usr/bin/env bash
# Soak: the edge build run for hours at 10,000 points, under the trouble a gateway meets.
#   - a pymodbus farm (bench/farm.py): 20 unit ids × 500 registers, every value changing
#     every second, polled at 1 s, every reading published (samples, deadband 0) and kept
#     in the history;
#   - a flapping device: a second farm (100 points) killed for FLAP_DOWN s every FLAP_S s;
#   - the broker (Mosquitto, persistent sessions) stopped for BROKER_DOWN s every
#     BROKER_S s, so the gateway spools and replays;
#   - SIGHUP every RELOAD_S s (a full reload of the pipeline);
#   - an alarm raised and cleared every ~7 s by a Modbus write, timed to its message at a
#     subscriber (alarm latency).
# Every 10 s it samples the daemon's RSS, open file descriptors, threads, CPU, spool and
# history size; a subscriber on a persistent session counts telemetry stream_seq gaps
# (must be 0) and resends. At the end it prints a summary and draws
# OUT/soak.svg (bench/soak_plot.py).
#
#   bench/soak.sh HOURS            (e.g. 24; fractions allowed)
#   OUT=dir (default target/soak) keeps the samples; HAZGATE_BIN=path runs another build
#   (default: the edge build, `--no-default-features --features edge`, release).
set -euo pipefail
HOURS=${1:?usage: bench/soak.sh HOURS}
BROKER_S=${BROKER_S:-3600}; BROKER_DOWN=${BROKER_DOWN:-10}
RELOAD_S=${RELOAD_S:-900}
FLAP_S=${FLAP_S:-300}; FLAP_DOWN=${FLAP_DOWN:-60}
if [ -z "${HAZGATE_BIN:-}" ]; then
  (cd "$(dirname "$0")/.." && cargo build --release --quiet --no-default-features --features edge --target-dir target/edge)
  HAZGATE_BIN=target/edge/release/hazgate
fi
source "$(dirname "$0")/lib.sh"
# The broker and the flapping device are restarted: the cleanup stops whichever runs.
trap 'kill "${BROKER:-}" "${FLAPPER:-}" 2>/dev/null || true; cleanup' EXIT
OUT=${OUT:-$PWD/target/soak}
rm -rf "$OUT"; mkdir -p "$OUT"
[ -x .venv/bin/python ] || tests/setup-peers.sh
END=$(python3 -c "import time; print(int(time.time() + $HOURS * 3600))")
log() { echo "$(date +%s.%N) $*" >> "$OUT/events.txt"; echo "soak: $(date -u +%H:%M:%S) $*"; }

MQTT=$(free_port); FARM=$(free_port); FLAP=$(free_port)
mkdir -p "$WORK/mq"
cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
max_queued_messages 0
persistence true
persistence_location $WORK/mq/
log_dest none
CONF
broker_up() {
  /usr/sbin/mosquitto -c "$WORK/mosquitto.conf" 2>/dev/null & BROKER=$!
  until mosquitto_sub -p "$MQTT" -t x -W 1 -C 1 -E >/dev/null 2>&1; do sleep 0.05; done
}
broker_up

.venv/bin/python bench/farm.py --port "$FARM" --units 20 --regs 500 --writable 21 > "$WORK/farm.log" 2>&1 &
PIDS+=($!)
flap_up() { .venv/bin/python bench/farm.py --port "$FLAP" --units 1 --regs 100 > "$WORK/flap.log" 2>&1 & FLAPPER=$!; }
flap_up
until grep -q READY "$WORK/farm.log"; do sleep 0.1; done

python3 bench/sidebyside-configs.py --units 20 --regs 500 --modbus-port "$FARM" \
  --mqtt-port "$MQTT" --out "$OUT" --telemetry samples --points csv
channel() {   # ID PORT DEVICE UNIT: a TCP channel of one device polled every second
  printf '\n[[channels]]\nid = "%s"\nkind = "tcp"\nhost = "127.0.0.1"\nport = %s\n' "$1" "$2"
  printf '  [[channels.devices]]\n  id = "%s"\n  unit_id = %s\n  poll_interval_ms = 1000\n  timeout_ms = 500\n' "$3" "$4"
}
{
  printf '\n[history]\npath = "%s/history"\n' "$OUT"
  channel alarm "$FARM" ALM 21
  channel flap "$FLAP" FLAP 1
  cat <<CONF

[[hazard_sources]]
id = "HS-SOAK"
name = "Soak"
kind = "process_unit"
level = 2
  [[hazard_sources.points]]
  id = "ALM-1"
  kind = "analog"
  device = "ALM"
  table = "holding"
  address = 0
  data_type = "u16"
  unit = "kPa"
  alarms = { h = 0.5 }
CONF
} >> "$OUT/site.toml"
for a in $(seq 0 99); do
  printf '  [[hazard_sources.points]]\n  id = "FLAP-%d"\n  kind = "analog"\n  device = "FLAP"\n  table = "holding"\n  address = %d\n  data_type = "u16"\n  scale = 0.1\n  unit = "kPa"\n' "$a" "$a" >> "$OUT/site.toml"
done
$HAZGATE_BIN check "$OUT/site.toml" > /dev/null 2>&1 || $HAZGATE_BIN check "$OUT/site.toml"

# The subscriber: a persistent session (-c), so what arrives while it reconnects after a
# broker restart is queued for it, not lost to it.
(mosquitto_sub -p "$MQTT" -c -i soak-sub -q 1 -t 'hazgate/#' -F '%U %t %p' 2>/dev/null \
  | python3 bench/soak_watch.py "$OUT") & PIDS+=($!)
sleep 1

$HAZGATE_BIN run --config "$OUT/site.toml" --api off --no-watch --log-level warn 2> "$OUT/gateway.log" &
GW=$!; PIDS+=($GW)
log "start pid=$GW hours=$HOURS broker_s=$BROKER_S reload_s=$RELOAD_S flap_s=$FLAP_S"

# The alarm: register 0 of unit 21 written 1 / 0 every ~7 s, each write's time logged.
.venv/bin/python - "$FARM" "$OUT/writes.txt" "$END" <<'PY' & PIDS+=($!)
import sys, time
from pymodbus.client import ModbusTcpClient
port, out, end = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
c = ModbusTcpClient("127.0.0.1", port=port)
v, i = 1, 0
with open(out, "w") as f:
    while time.time() < end:
        if not c.connected:
            c.connect()
        t = time.time()
        r = c.write_register(0, v, device_id=21)
        if not r.isError():
            f.write(f"{t} {v}\n"); f.flush()
            v ^= 1
        i += 1
        time.sleep(7 + (i % 5) * 0.17)
PY

HZ=$(getconf CLK_TCK)
start=$(date +%s); next_broker=$((start + BROKER_S)); next_reload=$((start + RELOAD_S)); next_flap=$((start + FLAP_S))
flap_back=0
while [ "$(date +%s)" -lt "$END" ]; do
  now=$(date +%s)
  kill -0 "$GW" 2>/dev/null || { log "gateway exited"; break; }
  spool=$(stat -c %s "$OUT/spool.redb" 2>/dev/null || echo 0)
  hist=$( (du -sb "$OUT/history" 2>/dev/null || echo 0) | cut -f1)
  printf '{"t":%s,"rss_kb":%s,"fds":%s,"threads":%s,"cpu_ticks":%s,"hz":%s,"spool_b":%s,"history_b":%s}\n' \
    "$now" "$(awk '/VmRSS/ {print $2}' /proc/$GW/status)" "$(ls /proc/$GW/fd | wc -l)" \
    "$(awk '/Threads/ {print $2}' /proc/$GW/status)" "$(awk '{print $14 + $15}' /proc/$GW/stat)" \
    "$HZ" "$spool" "${hist:-0}" >> "$OUT/samples.jsonl"
  if [ "$now" -ge "$next_broker" ]; then
    log "broker down"; kill -TERM "$BROKER"; wait "$BROKER" 2>/dev/null || true
    sleep "$BROKER_DOWN"; broker_up; log "broker up"
    next_broker=$((next_broker + BROKER_S))
  fi
  if [ "$now" -ge "$next_reload" ]; then
    kill -HUP "$GW"; log "reload"; next_reload=$((next_reload + RELOAD_S))
  fi
  if [ "$flap_back" -gt 0 ] && [ "$now" -ge "$flap_back" ]; then flap_up; log "flap up"; flap_back=0; fi
  if [ "$now" -ge "$next_flap" ]; then
    kill -TERM "$FLAPPER"; wait "$FLAPPER" 2>/dev/null || true; log "flap down"
    flap_back=$((now + FLAP_DOWN)); next_flap=$((next_flap + FLAP_S))
  fi
  sleep 10
done
log "end"
kill -TERM "$GW"; wait "$GW" 2>/dev/null || true
sleep 3
python3 bench/soak_plot.py "$OUT"
