#!/usr/bin/env bash
# Builds a Debian package of hazgate and prints its path:
#
#   packaging/build-deb.sh [ARCH] [gateway|centre]     ARCH: amd64 (default), arm64, armhf
#
# gateway (default) → target/deb/hazgate_VERSION_ARCH.deb: the edge build (no ingest,
#   no screen), hazgate.service, an example site file as a conffile, the docs. arm64 and
#   armhf are cross-built by packaging/cross.sh (Debian's rustc with -Zbuild-std).
# centre → target/deb/hazgate-centre_VERSION_amd64.deb: the full build (every command),
#   hazgate-ingest.service, /etc/hazgate/central.toml and the park plan as conffiles.
#   It replaces the gateway package on a machine (one /usr/bin/hazgate).
# The amd64 gateway is the build laid out by profile (bench/pgo.sh: trained on the
# 10,000-point steady state and the alarm path, it keeps 2–3 MiB fewer program pages
# resident; docs/performance.md). HAZGATE_PGO=0 packages the plain edge build instead
# (said on stderr), e.g. where llvm-profdata or the benchmark's peers are missing;
# HAZGATE_PGO=reuse packages the profiled build already made (packaging/test-deb.sh's
# upgrade) without training it again.
# Gateway layout:
#   /usr/bin/hazgate                       the program
#   /lib/systemd/system/hazgate.service    Type=notify, watchdog, hardened
#   /etc/hazgate/site.toml                 the site file (conffile: kept on upgrade)
#   /etc/hazgate/tokens.json               the local API's tokens (made at install)
#   /var/lib/hazgate/                      state, overrides, audit log, spool, history
#   /usr/share/doc/hazgate/                README, docs, the demo site
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-amd64}
KIND=${2:-gateway}
# HAZGATE_DEB_VERSION overrides the version (packaging/test-deb.sh tests an upgrade).
VERSION=${HAZGATE_DEB_VERSION:-$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)}

case "$ARCH/$KIND" in
  amd64/gateway)
    if [ "${HAZGATE_PGO:-1}" = 0 ]; then
      echo "build-deb: HAZGATE_PGO=0: packaging the edge build without a profile" >&2
      cargo build --release --quiet --no-default-features --features edge --target-dir target/edge
      BIN=target/edge/release/hazgate
    elif [ "${HAZGATE_PGO:-1}" = reuse ]; then
      [ -x target/pgo/release/hazgate ] || { echo "build-deb: HAZGATE_PGO=reuse: no target/pgo/release/hazgate; run bench/pgo.sh" >&2; exit 1; }
      BIN=target/pgo/release/hazgate
    else
      bash bench/pgo.sh >&2
      BIN=target/pgo/release/hazgate
    fi
    OBJDUMP=objdump ;;
  arm64/gateway)
    bash packaging/cross.sh aarch64-unknown-linux-gnu >/dev/null
    BIN=target/cross/aarch64-unknown-linux-gnu/release/hazgate; OBJDUMP=aarch64-linux-gnu-objdump ;;
  armhf/gateway)
    bash packaging/cross.sh armv7-unknown-linux-gnueabihf >/dev/null
    BIN=target/cross/armv7-unknown-linux-gnueabihf/release/hazgate; OBJDUMP=arm-linux-gnueabihf-objdump ;;
  amd64/centre)
    cargo build --release --quiet
    BIN=target/release/hazgate; OBJDUMP=objdump ;;
  *) echo "build-deb: ARCH/KIND is amd64, arm64 or armhf / gateway, or amd64 / centre, not $ARCH/$KIND" >&2; exit 2 ;;
esac
if [ "$KIND" = gateway ]; then
  PACKAGE=hazgate; UNIT=hazgate.service; CONFFILES="/etc/hazgate/site.toml"
  DESCRIPTION="Description: edge gateway for major-hazard-source monitoring (重大危险源监测)
 Polls gas detectors, tank transmitters and SIS / ESD signals over Modbus TCP, RTU and
 RTU over TCP; judges alarms (ISA-18.2 states, GB/T 50493-2019 setpoints) and the
 red / orange / yellow / blue risk of each hazard source; sends it all over MQTT with a
 durable spool, and keeps a local history for threshold tuning."
else
  PACKAGE=hazgate-centre; UNIT=hazgate-ingest.service
  CONFFILES="/etc/hazgate/central.toml /etc/hazgate/park-plan.svg"
  DESCRIPTION="Description: park centre for hazgate gateways (重大危险源监测中心)
 Stores what the gateways publish over MQTT in a time-series store (InfluxDB v2 write
 API: InfluxDB, VictoriaMetrics), serves the command-centre wall screen and the alarm
 feedback loop, and carries the Grafana dashboards. Every hazgate command is in it."
fi

ROOT=target/deb/${PACKAGE}_${VERSION}_${ARCH}
DOC=$ROOT/usr/share/doc/$PACKAGE
rm -rf "$ROOT"
install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/hazgate" "$DOC/examples"
install -m 0755 "$BIN" "$ROOT/usr/bin/hazgate"
install -m 0644 "packaging/$UNIT" "$ROOT/lib/systemd/system/$UNIT"
if [ "$KIND" = gateway ]; then
  python3 packaging/site-for-package.py firmware-config/demo-site.toml > "$ROOT/etc/hazgate/site.toml"
  install -m 0644 firmware-config/demo-site.toml "$DOC/examples/demo-site.toml"
else
  # The tokens beside the gateway's, in /etc/hazgate (made at install).
  sed '/^\[http\]/a tokens_path = "/etc/hazgate/tokens.json"' firmware-config/central.toml \
    > "$ROOT/etc/hazgate/central.toml"
  install -m 0644 firmware-config/park-plan.svg "$ROOT/etc/hazgate/park-plan.svg"
  cp -r dashboards "$DOC/dashboards"
fi
chmod 0640 "$ROOT"/etc/hazgate/*
install -m 0644 README.md "$DOC/README.md"
cp -r docs "$DOC/docs"
printf '%s\nLicense: Apache-2.0\n' "$PACKAGE" > "$DOC/copyright"
for s in postinst prerm postrm; do
  sed -e "s|@UNIT@|$UNIT|g" -e "s|@PACKAGE@|$PACKAGE|g" -e "s|@CONFFILES@|$CONFFILES|g" \
    "packaging/deb/$s" > "$ROOT/DEBIAN/$s"
  chmod 0755 "$ROOT/DEBIAN/$s"
done
printf '%s\n' $CONFFILES > "$ROOT/DEBIAN/conffiles"

# The newest glibc symbol version the binary needs is the libc6 it depends on.
GLIBC=$("$OBJDUMP" -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $VERSION
Architecture: $ARCH
Maintainer: hazgate developers <hazgate@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= $GLIBC), passwd, procps
Recommends: systemd
$([ "$KIND" = centre ] && printf 'Conflicts: hazgate\nReplaces: hazgate\nProvides: hazgate\n')
Section: net
Priority: optional
Homepage: https://localhost/hazgate
$DESCRIPTION
CONTROL
sed -i '/^$/d' "$ROOT/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "target/deb/${PACKAGE}_${VERSION}_${ARCH}.deb" >/dev/null
echo "target/deb/${PACKAGE}_${VERSION}_${ARCH}.deb"
