#!/usr/bin/env bash
# The county screen at scale: ENTERPRISES gateways (default 500) of SOURCES hazard
# sources each (default 10: 5,000 sources) in 10 parks, retained on Mosquitto;
# `hazgate ingest` (with VictoriaMetrics) serves /screen to headless Chromium. CHANGES
# risk changes (default 100) are published one at a time at random; each is timed from
# the publish to the tile's new colour in the page (bench/screen.py).
#
# Reports the latency p50 / p99 / max, the time to the first full picture, the page's
# JS heap, Chromium's total RSS, and ingest's CPU (core-seconds over the run) and RSS.
#
#   bench/screen.sh [ENTERPRISES] [SOURCES] [CHANGES]
#
# Needs tests/setup-peers.sh (mosquitto, victoria-metrics, chromium, chromedriver).
# Noisy 2-core machine: quote several runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ENTERPRISES=${1:-500}
SOURCES=${2:-10}
CHANGES=${3:-100}

MQTT=$(free_port); VM=$(free_port); HTTP=$(free_port); DRIVER=$(free_port)
cat > "$WORK/mosquitto.conf" <<CONF
listener $MQTT 127.0.0.1
allow_anonymous true
user root
max_queued_messages 0
log_dest file $WORK/mosquitto.log
CONF
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" & PIDS+=($!)
/usr/bin/victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr=127.0.0.1:$VM \
  -retentionPeriod=100y > "$WORK/vm.log" 2>&1 & PIDS+=($!)
/usr/bin/chromedriver --port="$DRIVER" > /dev/null 2>&1 & PIDS+=($!)
cat > "$WORK/central.toml" <<CONF
[mqtt]
host = "127.0.0.1"
port = $MQTT
client_id = "bench-screen"
[store]
url = "http://127.0.0.1:$VM"
org = "park"
bucket = "hazgate"
[http]
listen = "127.0.0.1:$HTTP"
CONF
$BIN check "$WORK/central.toml" > /dev/null
$BIN ingest --config "$WORK/central.toml" --log-level warn 2>> "$WORK/ingest.log" & INGEST=$!; PIDS+=($INGEST)
until curl -s -o /dev/null "http://127.0.0.1:$HTTP/healthz"; do sleep 0.1; done
until curl -s -o /dev/null "http://127.0.0.1:$DRIVER/status"; do sleep 0.1; done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
c0=$(cpu $INGEST)
result=$(python3 bench/screen.py --mqtt "$MQTT" --http "$HTTP" --driver "$DRIVER" \
  --profile "$WORK/chromium" --enterprises "$ENTERPRISES" --sources "$SOURCES" --changes "$CHANGES" &
  pid=$!
  # Chromium's memory while the page is live (every process of this profile).
  peak=0
  while kill -0 $pid 2>/dev/null; do
    kb=$(pgrep -f "user-data-dir=$WORK/chromium" | xargs -r -I{} awk '/VmRSS/{print $2}' /proc/{}/status 2>/dev/null | awk '{s+=$1} END{print s+0}')
    [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 1
  done
  wait $pid
  echo "CHROMIUM_PEAK_KB=$peak" >&2)
c1=$(cpu $INGEST)
rss=$(awk '/VmRSS/{print $2}' "/proc/$INGEST/status")
echo "$result"
echo "ingest: $(echo "scale=1; ($c1 - $c0) / $hz" | bc) core-seconds over the run, RSS $((rss / 1024)) MiB"
