#!/usr/bin/env bash
# Installs what the integration tests talk to, idempotently, on a fresh machine:
#   - socat (Debian) for RTU over a pseudo-terminal pair,
#   - tmux (Debian): an 80 × 40 terminal the demo's frame must fit,
#   - faketime (Debian): libfaketime, to step a gateway's wall clock while it runs,
#   - mosquitto and mosquitto-clients (Debian) as the MQTT broker,
#   - victoria-metrics (Debian) as the time-series store (InfluxDB v2 write API),
#   - influxdb 1.6 (Debian) to run the dashboards' InfluxQL queries,
#   - chromium and chromium-driver (Debian) for the command-centre screen test,
#   - openssl (Debian) for the tests' throw-away CA and certificates, curl (Debian),
#   - llvm-profdata of rustc's LLVM version (Debian's llvm-N) for the package's build
#     laid out by profile (bench/pgo.sh),
#   - pymodbus (PyPI, pinned) in the project-local virtualenv .venv.
# Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYMODBUS_VERSION=3.16.1

need_apt=()
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need_apt+=(faketime)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
[ -x /usr/bin/victoria-metrics ] || need_apt+=(victoria-metrics)
[ -x /usr/bin/influxd ] || need_apt+=(influxdb)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# CJK glyphs for the screen's Chinese labels (screenshots would show boxes without).
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
command -v "llvm-profdata-$llvm_major" >/dev/null 2>&1 || need_apt+=("llvm-$llvm_major")
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-peers: installing ${need_apt[*]} from Debian"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup-peers: creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import pymodbus, serial, sys; sys.exit(pymodbus.__version__ != '$PYMODBUS_VERSION')" 2>/dev/null; then
  echo "setup-peers: installing pymodbus $PYMODBUS_VERSION into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "pymodbus[serial]==$PYMODBUS_VERSION"
fi
# The Debian package may start a system broker on 1883; tests use their own on free ports.
# Likewise victoria-metrics: tests start their own with throw-away data directories.
for svc in mosquitto victoria-metrics influxdb; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
echo "setup-peers: victoria-metrics $(/usr/bin/victoria-metrics -version 2>/dev/null | head -1)"
echo "setup-peers: socat $(socat -V 2>/dev/null | awk '/socat version/ {print $3}'), mosquitto $(/usr/sbin/mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}'), pymodbus $(.venv/bin/python -c 'import pymodbus; print(pymodbus.__version__)')"
