#!/usr/bin/env bash
# Central ingest throughput and lag: Mosquitto → `hazgate ingest` → VictoriaMetrics
# (InfluxDB v2 write API), all on this machine.
#
#  1. Throughput: READINGS readings (500 per message, as a gateway batches them) are
#     queued in the broker for ingest's persistent session while it is stopped; then
#     ingest starts and drains them into the store. Reports readings/s, messages/s and
#     the CPU of ingest, the store and the broker; RUNS times, then the median.
#  2. Lag: a producer publishes RATE readings/s stamped with the current time for 20 s;
#     reports p50 / p99 of gateway timestamp → accepted by the store (ingest's
#     hazgate_ingest_lag_seconds summary).
#
#   bench/ingest.sh [READINGS] [RATE] [RUNS]     (defaults: 1000000, 50000, 3)
#
# Needs tests/setup-peers.sh (mosquitto, victoria-metrics). Noisy 2-core machine: quote
# medians of several runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
READINGS=${1:-1000000}
RATE=${2:-50000}
RUNS=${3:-3}

MQTT=$(free_port); VM=$(free_port); HTTP=$(free_port)

cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
max_queued_messages 0
max_inflight_messages 200
log_dest file $WORK/mosquitto.log
CONF
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" & BROKER=$!; PIDS+=($BROKER)
/usr/bin/victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:$VM \
  -search.latencyOffset=0s -retentionPeriod=100y > "$WORK/vm.log" 2>&1 & STORE=$!; PIDS+=($STORE)
sleep 1

cat > "$WORK/central.toml" <<CONF
[mqtt]
host = "127.0.0.1"
port = $MQTT
client_id = "bench-ingest"
group = "bench"
[store]
url = "http://127.0.0.1:$VM"
org = "park"
bucket = "hazgate"
[http]
listen = "127.0.0.1:$HTTP"
CONF
$BIN check "$WORK/central.toml"

start_ingest() {
  $BIN ingest --config "$WORK/central.toml" --log-level warn 2>> "$WORK/ingest.log" & INGEST=$!
  until curl -s -o /dev/null "http://127.0.0.1:$HTTP/healthz"; do sleep 0.05; done
}
stop_ingest() { kill -TERM $INGEST; wait $INGEST || true; }
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# Telemetry messages of gateway G0, one JSON per line for mosquitto_pub -l. Arguments:
# readings, readings/s (0 = as fast as possible: the backlog, stamped an hour ago).
cat > "$WORK/produce.py" <<'PY'
import json, sys, time
total, rate = int(sys.argv[1]), float(sys.argv[2])
per_msg, points = 500, 10_000
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
sent, seq, t0 = 0, 0, time.time()
base = t0 - 3600 if rate == 0 else None  # the backlog: an hour ago, 1 ms apart per scan
while sent < total:
    seq += 1
    now = time.time()
    ts = iso(now if base is None else base + seq / 1000)
    first = (seq * per_msg) % points
    readings = [{"point": f"P{(first + i) % points}", "hazard_source": "HS-1", "kind": "pressure",
                 "value": (seq + i) % 1000 / 10, "unit": "MPa", "quality": "good", "ts": ts}
                for i in range(per_msg)]
    msg = {"seq": seq, "ts": ts, "park": "BENCH", "enterprise": "E", "gateway": "G0",
           "type": "telemetry", "readings": readings}
    sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
    sent += per_msg
    if rate > 0:
        ahead = t0 + sent / rate - time.time()
        if ahead > 0:
            sys.stdout.flush()
            time.sleep(ahead)
sys.stdout.flush()
PY
publish() { # readings rate
  python3 "$WORK/produce.py" "$1" "$2" | mosquitto_pub -p "$MQTT" -q 1 -l -t "hazgate/v1/BENCH/E/G0/telemetry"
}

# 1. Throughput, RUNS times (the same points each run: later runs overwrite them).
start_ingest; stop_ingest        # creates the persistent session and its subscriptions
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for run in $(seq "$RUNS"); do
  echo "run $run: queueing $READINGS readings in the broker …"
  publish "$READINGS" 0
  start_ingest
  T0=$(date +%s.%N); C0=$(ticks $INGEST); B0=$(ticks $BROKER); S0=$(ticks $STORE)
  until [ "$(metric hazgate_ingest_points_written_total)" = "$READINGS" ]; do
    sleep 0.1
    [ "$(echo "$(date +%s.%N) - $T0 > 300" | bc)" = 1 ] && { echo "drain timed out at $(metric hazgate_ingest_points_written_total)"; exit 1; }
  done
  T1=$(date +%s.%N); C1=$(ticks $INGEST); B1=$(ticks $BROKER); S1=$(ticks $STORE)
  python3 - "$READINGS" "$T0" "$T1" "$C0" "$C1" "$(getconf CLK_TCK)" "$B0" "$B1" "$S0" "$S1" <<'PY' | tee -a "$WORK/runs"
import sys
n, t0, t1, c0, c1, hz, b0, b1, s0, s1 = map(float, sys.argv[1:])
d = t1 - t0
cpu = lambda a, b: (b - a) / hz / d * 100
print(f"throughput: {n:.0f} readings in {d:.2f} s = {n / d:,.0f} readings/s ({n / 500 / d:,.0f} messages/s); "
      f"CPU % of one core: ingest {cpu(c0, c1):.0f}, VictoriaMetrics {cpu(s0, s1):.0f}, Mosquitto {cpu(b0, b1):.0f}; "
      f"ingest {c1 - c0:.0f} ticks = {(c1 - c0) / hz / n * 1e6:.2f} core-s per million readings")
PY
  stop_ingest
done
python3 - "$WORK/runs" <<'PY'
import statistics, sys
rates = [float(l.split(" = ")[1].split()[0].replace(",", "")) for l in open(sys.argv[1])]
cost = [float(l.split(" = ")[2].split()[0]) for l in open(sys.argv[1])]
print(f"median of {len(rates)} runs: {statistics.median(rates):,.0f} readings/s; "
      f"ingest {statistics.median(cost):.2f} core-s per million readings")
PY

# 2. Lag at a steady rate.
start_ingest
echo "publishing $RATE readings/s for 20 s …"
publish "$((RATE * 20))" "$RATE"
sleep 2
curl -s "http://127.0.0.1:$HTTP/metrics" | python3 -c '
import sys
q = {}
for l in sys.stdin:
    if l.startswith("hazgate_ingest_lag_seconds{quantile="):
        q[l.split("\"")[1]] = float(l.split()[-1])
    if l.startswith("hazgate_ingest_lag_seconds_count"):
        q["count"] = float(l.split()[-1])
p50, p99, n = q.get("0.5", 0) * 1000, q.get("0.99", 0) * 1000, q.get("count", 0)
print(f"lag (gateway ts → stored): p50 {p50:.0f} ms, p99 {p99:.0f} ms over {n:.0f} messages")
'
stop_ingest
grep -E "WARN|ERROR" "$WORK/ingest.log" | head -5 || true
