#!/usr/bin/env bash
# The gateway's .deb installed in a Debian 12 root (debootstrap) and run there under
# systemd (systemd-nspawn boots the root; the container shares this machine's network,
# so the simulator on this machine is its devices):
#   - the unit passes `systemd-analyze verify`; the package installs the user (in
#     dialout), /etc/hazgate (root:hazgate) and /var/lib/hazgate;
#   - the service starts as `Type=notify` (active only once READY, its STATUS shown),
#     runs as hazgate, answers /healthz;
#   - a token made by root is readable by the service; a threshold command through the
#     local API is kept in /var/lib/hazgate (the rest is read-only);
#   - the service reads the simulator over TCP and over a serial port (/dev/ttyUSB0,
#     root:dialout 0660 as udev makes it), as the hardened unit allows;
#   - `systemctl reload` reloads; a judge made to hang (its state write blocked on a
#     FIFO) starves the watchdog and systemd restarts the service;
#   - an upgrade keeps the edited site file (conffile) and the state; a purge removes
#     the state;
#   - the centre's package: `hazgate ingest` as a Type=notify service that serves.
#
#   packaging/test-deb.sh           (root, or sudo; installs debootstrap and systemd-container)
set -euo pipefail
cd "$(dirname "$0")/.."
# debootstrap and systemd-nspawn need root: a developer's run asks sudo, as
# tests/setup-peers.sh does.
[ "$(id -u)" -eq 0 ] || exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME bash "$0" "$@"
for p in debootstrap systemd-container; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
say() { echo "test-deb: $*"; }

DEB=$(bash packaging/build-deb.sh amd64)
HOST=${HAZGATE_HOST_BIN:-target/debug/hazgate}
[ -x "$HOST" ] || cargo build --quiet

# A Debian 12 root with systemd, made once and kept clean: each run works on a copy.
BASE=target/deb12-base
if [ ! -e "$BASE/.complete" ]; then
  rm -rf "$BASE"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm "$BASE" \
    http://deb.debian.org/debian > target/debootstrap.log 2>&1 || fail "debootstrap: $(tail -3 target/debootstrap.log)"
  touch "$BASE/.complete"
fi
ROOT=$(mktemp -d /var/tmp/hazgate-deb12.XXXX)
NSPAWN=""
cleanup() {
  [ -n "$NSPAWN" ] && kill "$NSPAWN" 2>/dev/null && wait "$NSPAWN" 2>/dev/null
  [ -n "${SIM:-}" ] && kill "$SIM" "$SOCAT" 2>/dev/null
  rm -rf "$ROOT" "$ROOT/../ttyA-$$" "$ROOT/../ttyB-$$"
}
trap cleanup EXIT
cp -a "$BASE/." "$ROOT/"
cp "$DEB" "$ROOT/root/"
in_root() { systemd-nspawn -q --register=no --keep-unit -D "$ROOT" --pipe "$@" 2> >(grep -v 'propagate' >&2); }

in_root dpkg -i "/root/$(basename "$DEB")" > "$ROOT/../dpkg-$$.log" 2>&1 \
  || fail "dpkg -i: $(cat "$ROOT/../dpkg-$$.log")"
rm -f "$ROOT/../dpkg-$$.log"
INIT=""
# Owner, group and mode as the root sees them (its users, not this machine's).
owner() { if [ -n "$INIT" ]; then on stat -c '%U:%G %a' "$1"; else in_root stat -c '%U:%G %a' "$1"; fi; }
in_root systemd-analyze verify /lib/systemd/system/hazgate.service || fail "systemd-analyze verify"
in_root id hazgate | grep -q '(dialout)' || fail "the hazgate user is not in dialout"
[ "$(owner /etc/hazgate/tokens.json)" = "root:hazgate 640" ] || fail "tokens.json: $(owner /etc/hazgate/tokens.json)"
say "installed; unit verified; user hazgate in dialout"

# The simulator serves the packaged site: its TCP devices on 127.0.0.1:15020, its
# RS-485 ones on one end of a pty pair whose other end is the container's /dev/ttyUSB0,
# root:dialout 0660 as udev makes a USB serial adapter.
socat pty,raw,echo=0,link="$ROOT/../ttyA-$$" pty,raw,echo=0,link="$ROOT/../ttyB-$$" &
SOCAT=$!
for _ in $(seq 50); do [ -e "$ROOT/../ttyB-$$" ] && break; sleep 0.1; done
PTY=$(readlink -f "$ROOT/../ttyA-$$")
chgrp 20 "$PTY"; chmod 0660 "$PTY"      # gid 20: dialout in Debian
"$HOST" simulate --config firmware-config/demo-site.toml --serve "rs485-1=$ROOT/../ttyB-$$" --log-level warn &
SIM=$!

systemd-nspawn -q --register=no --keep-unit -b -D "$ROOT" --bind="$PTY:/dev/ttyUSB0" \
  --console=pipe > "$ROOT/root/boot.log" 2>&1 &
NSPAWN=$!
for _ in $(seq 100); do INIT=$(pgrep -P "$NSPAWN" -x systemd || true); [ -n "$INIT" ] && break; sleep 0.1; done
[ -n "$INIT" ] || fail "the container did not boot: $(tail -5 "$ROOT/root/boot.log")"
on() { nsenter -t "$INIT" -a "$@"; }
active() { for _ in $(seq "${2:-300}"); do [ "$(on systemctl is-active "$1" 2>/dev/null)" = active ] && return 0; sleep 0.1; done; return 1; }
prop() { on systemctl show hazgate -p "$1" --value; }
# Whether the journal (of a unit, or all of it) has a line with TEXT. grep -c reads to
# the end: a grep -q that stops early would fail the pipeline on SIGPIPE.
logged() { on journalctl ${2:+-u "$2"} --no-pager | grep -c -- "$1" >/dev/null; }
active hazgate || fail "hazgate not active: $(on journalctl -u hazgate --no-pager | tail -5)"
[ "$(prop Type)" = notify ] || fail "Type=$(prop Type)"
[ "$(prop StatusText)" = "50 points on 2 channels" ] || fail "STATUS=$(prop StatusText)"
[ "$(on stat -c %U "/proc/$(prop MainPID)")" = hazgate ] || fail "not running as hazgate"
# The journal stamps each line: the daemon's own text lines carry no second time.
on journalctl -u hazgate -o cat --no-pager | grep -c '^ *INFO hazgate::app::run: hazgate starting' >/dev/null \
  || fail "log lines in the journal: $(on journalctl -u hazgate -o cat --no-pager | grep -m1 'hazgate starting')"
say "service active (Type=notify, status \"$(prop StatusText)\", watchdog $(prop WatchdogUSec)) as hazgate"

health=""
for _ in $(seq 100); do health=$(curl -s 127.0.0.1:8088/healthz || true); echo "$health" | grep -q '"devices_down"' && break; sleep 0.2; done
for _ in $(seq 150); do health=$(curl -s 127.0.0.1:8088/healthz || true); echo "$health" | grep -q '"devices_down":\[\]' && break; sleep 0.2; done
echo "$health" | grep -q '"devices_down":\[\]' || fail "devices down: $health"
[ "$(on stat -c '%G %a' /dev/ttyUSB0)" = "dialout 660" ] || fail "/dev/ttyUSB0: $(on stat -c '%G %a' /dev/ttyUSB0)"
say "polling the simulator: all 9 devices answer, the 6 on RS-485 through /dev/ttyUSB0 (root:dialout 0660)"

# A token made by root; a command through the API, kept under /var/lib/hazgate.
TOKEN=$(on hazgate token --config /etc/hazgate/site.toml add eng-wang --role engineer 2>/dev/null)
[ "$(owner /etc/hazgate/tokens.json)" = "root:hazgate 640" ] || fail "tokens.json after add: $(owner /etc/hazgate/tokens.json)"
code=$(curl -s -o "$ROOT/root/cmd.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  -d '{"request_id":"pkg-1","changes":[{"point":"GT-101","set":{"h":18}}]}' 127.0.0.1:8088/api/v1/commands/thresholds)
[ "$code" = 200 ] || fail "thresholds command: $code $(cat "$ROOT/root/cmd.json")"
grep -q '"GT-101"' "$ROOT/var/lib/hazgate/overrides.json" || fail "no overrides in /var/lib/hazgate"
grep -q '"by":"eng-wang"' "$ROOT/var/lib/hazgate/audit.jsonl" || fail "no audit line"
say "token readable by the service; threshold change kept in /var/lib/hazgate/overrides.json and audited"

on systemctl reload hazgate
for _ in $(seq 100); do logged "configuration reloaded" hazgate && break; sleep 0.1; done
logged "configuration reloaded" hazgate || fail "reload not seen"
active hazgate || fail "not active after reload"
say "systemctl reload: reloaded, still active"

# The watchdog: 3 s for this test; the judge's next state write blocks on a FIFO.
mkdir -p "$ROOT/etc/systemd/system/hazgate.service.d"
printf '[Service]\nWatchdogSec=3s\n' > "$ROOT/etc/systemd/system/hazgate.service.d/watchdog.conf"
on systemctl daemon-reload
on systemctl restart hazgate
active hazgate || fail "not active after restart"
restarts=$(prop NRestarts)
on runuser -u hazgate -- mkfifo /var/lib/hazgate/state.json.tmp
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" \
  -d '{"request_id":"pkg-2","changes":[{"point":"GT-101","set":{"h":19}}]}' --max-time 2 \
  127.0.0.1:8088/api/v1/commands/thresholds || true
for _ in $(seq 200); do logged "hazgate.service: Watchdog timeout" && break; sleep 0.1; done
logged "hazgate.service: Watchdog timeout" || fail "systemd's watchdog did not fire: $(on journalctl -u hazgate --no-pager | tail -5)"
logged "stage hung" hazgate || fail "the hang was not logged"
# Gone before the restart (RestartSec=5s): the new start would block on it too.
rm -f "$ROOT/var/lib/hazgate/state.json.tmp"
for _ in $(seq 200); do [ "$(prop NRestarts)" -gt "$restarts" ] && break; sleep 0.1; done
[ "$(prop NRestarts)" -gt "$restarts" ] || fail "the hung judge was not restarted: $(on journalctl -u hazgate --no-pager | tail -5)"
active hazgate 300 || fail "not active after the watchdog restart"
rm -rf "$ROOT/etc/systemd/system/hazgate.service.d"; on systemctl daemon-reload
say "a hung judge: logged, watchdog timeout, restarted by systemd (NRestarts $(prop NRestarts))"

# Upgrade: the edited site file and the state stay.
sed -i 's/^gateway_id = "GW-01"/gateway_id = "GW-07"/' "$ROOT/etc/hazgate/site.toml"
# The same program under a new version (its profiled build is not made twice).
DEB2=$(HAZGATE_PGO=reuse HAZGATE_DEB_VERSION=0.1.0+upgrade bash packaging/build-deb.sh amd64)
cp "$DEB2" "$ROOT/root/"
on dpkg -i --force-confold "/root/$(basename "$DEB2")" > /dev/null 2>&1 || fail "upgrade failed"
grep -q '^gateway_id = "GW-07"' "$ROOT/etc/hazgate/site.toml" || fail "the upgrade replaced the edited site file"
grep -q '"GT-101"' "$ROOT/var/lib/hazgate/overrides.json" || fail "the upgrade lost the overrides"
active hazgate || fail "not active after the upgrade"
for _ in $(seq 100); do logged "gateway=GW-07" hazgate && break; sleep 0.1; done
logged "gateway=GW-07" hazgate || fail "the upgraded service does not run the edited site file"
say "upgrade: site file kept (GW-07), overrides kept, service restarted"

on systemctl stop hazgate
[ "$(prop Result)" = success ] || fail "stop: Result=$(prop Result)"
on dpkg --purge hazgate > /dev/null 2>&1 || fail "purge failed"
[ ! -e "$ROOT/var/lib/hazgate" ] || fail "purge left /var/lib/hazgate"
say "clean stop; purge removed /var/lib/hazgate"

# The centre's package on the same machine: hazgate ingest as a Type=notify service.
CENTRE=$(bash packaging/build-deb.sh amd64 centre)
cp "$CENTRE" "$ROOT/root/"
on dpkg -i "/root/$(basename "$CENTRE")" > /dev/null 2>&1 || fail "installing $CENTRE failed"
on systemd-analyze verify /lib/systemd/system/hazgate-ingest.service || fail "systemd-analyze verify (ingest)"
active hazgate-ingest || fail "hazgate-ingest not active: $(on journalctl -u hazgate-ingest --no-pager | tail -5)"
status=$(on systemctl show hazgate-ingest -p StatusText --value)
[ "$status" = "ingesting 127.0.0.1:1883" ] || fail "ingest STATUS=$status"
code=$(curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:8090/healthz || true)
[ "$code" = 200 ] || [ "$code" = 503 ] || fail "ingest /healthz: $code"
on systemctl stop hazgate-ingest
[ "$(on systemctl show hazgate-ingest -p Result --value)" = success ] || fail "ingest stop"
on dpkg --purge hazgate-centre > /dev/null 2>&1 || fail "purge hazgate-centre failed"
say "centre package: hazgate-ingest active (status \"$status\"), /healthz $code, clean stop, purged"
say "ok"
