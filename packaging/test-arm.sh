#!/usr/bin/env bash
# The aarch64 gateway build, run under qemu-user against the simulator (the host's
# build): `hazgate poll` reads every point of the demo site over Modbus TCP and RTU,
# and `hazgate run` publishes the site's telemetry to Mosquitto.
#
# The RS-485 channel is served as RTU over TCP (a serial device server), not over a
# pty: qemu-user 7.2 does not implement the TCGETS2 ioctl (termios2) the serial port
# is opened with ("Unsupported ioctl: cmd=0x802c542a"), so a serial line cannot be
# emulated; the RTU framing is the same either way.
#
#   packaging/test-arm.sh [TARGET]        (default aarch64-unknown-linux-gnu)
#
# Needs tests/setup-peers.sh (mosquitto, socat) and the host's debug build
# (target/debug/hazgate: `cargo build`). Exits non-zero with the reason on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-aarch64-unknown-linux-gnu}
bash packaging/cross.sh "$TARGET" >/dev/null
case "$TARGET" in
  aarch64-*) QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
  armv7-*) QEMU="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
esac
ARM="target/cross/$TARGET/release/hazgate"
HOST=${HAZGATE_HOST_BIN:-target/debug/hazgate}
[ -x "$HOST" ] || cargo build --quiet
fail() { echo "test-arm: FAIL: $*" >&2; exit 1; }

WORK=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT=$(port); MODBUS=$(port); RTU=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\n' "$MQTT" > "$WORK/mosquitto.conf"
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" 2>/dev/null & PIDS+=($!)
sed -e "s/port = 15020/port = $MODBUS/" -e '/^id = "rs485-1"/,/^inter_frame/ {
      s/^kind = "rtu"/kind = "rtu_over_tcp"/; s|^path = .*|host = "127.0.0.1"\nport = '"$RTU"'|
      /^baud\|^parity\|^data_bits\|^stop_bits/d }' \
  firmware-config/demo-site.toml > "$WORK/site.toml"
cat >> "$WORK/site.toml" <<CONF
[uplink]
host = "127.0.0.1"
port = $MQTT
spool_path = "$WORK/spool.redb"
audit_path = "$WORK/audit.jsonl"
CONF
"$HOST" check "$WORK/site.toml" >/dev/null 2>&1 || "$HOST" check "$WORK/site.toml"
"$HOST" simulate --config "$WORK/site.toml" --log-level warn & PIDS+=($!)
for p in $MODBUS $RTU; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done

echo "test-arm: $(file -b "$ARM" | cut -d, -f1-2)"
$QEMU "$ARM" --version
# poll: every point of the site answered, with a good quality.
$QEMU "$ARM" poll --config "$WORK/site.toml" --json --log-level warn > "$WORK/poll.jsonl" \
  || fail "poll exited non-zero"
points=$(grep -c '"point"' "$WORK/poll.jsonl" || true)
good=$(grep -c '"quality":"good"' "$WORK/poll.jsonl" || true)
expected=$("$HOST" check "$WORK/site.toml" 2>/dev/null | sed -n 's/.*, \([0-9]*\) points).*/\1/p')
echo "test-arm: poll read $points points ($good good) of $expected"
[ "$points" = "$expected" ] || fail "poll printed $points points, the site has $expected"
[ "$good" -ge $((expected * 9 / 10)) ] || fail "only $good of $points readings good"

# run: telemetry from this gateway reaches the broker.
mosquitto_sub -p "$MQTT" -t 'hazgate/#' -v -W 40 -C 20 > "$WORK/sub.txt" 2>/dev/null & SUB=$!
$QEMU "$ARM" run --config "$WORK/site.toml" --api off --no-watch --log-level warn 2> "$WORK/run.log" & GW=$!
PIDS+=($GW)
wait $SUB || true
kill -TERM $GW; wait $GW || fail "run did not stop cleanly: $(tail -5 "$WORK/run.log")"
telemetry=$(grep -c '/telemetry ' "$WORK/sub.txt" || true)
echo "test-arm: run published $(wc -l < "$WORK/sub.txt") messages ($telemetry telemetry) to Mosquitto"
[ "$telemetry" -gt 0 ] || fail "no telemetry arrived: $(tail -5 "$WORK/run.log")"
grep -q '^hazgate/v1/CP-320500-01/[^/]*/GW-01/' "$WORK/sub.txt" || fail "the messages are not GW-01's: $(head -c 300 "$WORK/sub.txt")"
echo "test-arm: ok ($TARGET under qemu-user)"
