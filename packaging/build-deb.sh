#!/usr/bin/env bash
# Builds the gateway's Debian package: the edge build of hazgate (no ingest, no screen),
# its systemd unit, an example site file as a conffile, and the docs.
#
#   packaging/build-deb.sh [ARCH]       ARCH: amd64 (default) or arm64
#
# Writes target/deb/hazgate_VERSION_ARCH.deb and prints its path. arm64 is cross-built
# by packaging/cross.sh (Debian's rustc with -Zbuild-std). Layout:
#   /usr/bin/hazgate                       the program
#   /lib/systemd/system/hazgate.service    Type=notify, watchdog, hardened
#   /etc/hazgate/site.toml                 the site file (conffile: kept on upgrade)
#   /etc/hazgate/tokens.json               the local API's tokens (made at install)
#   /var/lib/hazgate/                      state, overrides, audit log, spool, history
#   /usr/share/doc/hazgate/                README, docs, the demo site
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-amd64}
# HAZGATE_DEB_VERSION overrides the version (packaging/test-deb.sh tests an upgrade).
VERSION=${HAZGATE_DEB_VERSION:-$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)}

case "$ARCH" in
  amd64)
    cargo build --release --quiet --no-default-features --features edge --target-dir target/edge
    BIN=target/edge/release/hazgate; OBJDUMP=objdump ;;
  arm64)
    bash packaging/cross.sh aarch64-unknown-linux-gnu
    BIN=target/cross/aarch64-unknown-linux-gnu/release/hazgate; OBJDUMP=aarch64-linux-gnu-objdump ;;
  *) echo "build-deb: ARCH is amd64 or arm64, not $ARCH" >&2; exit 2 ;;
esac

ROOT=target/deb/hazgate_${VERSION}_${ARCH}
rm -rf "$ROOT"
install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/hazgate" \
  "$ROOT/usr/share/doc/hazgate/examples"
install -m 0755 "$BIN" "$ROOT/usr/bin/hazgate"
install -m 0644 packaging/hazgate.service "$ROOT/lib/systemd/system/hazgate.service"
python3 packaging/site-for-package.py firmware-config/demo-site.toml > "$ROOT/etc/hazgate/site.toml"
chmod 0640 "$ROOT/etc/hazgate/site.toml"
install -m 0644 README.md "$ROOT/usr/share/doc/hazgate/README.md"
cp -r docs "$ROOT/usr/share/doc/hazgate/docs"
install -m 0644 firmware-config/demo-site.toml "$ROOT/usr/share/doc/hazgate/examples/demo-site.toml"
printf 'hazgate\nLicense: Apache-2.0\n' > "$ROOT/usr/share/doc/hazgate/copyright"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$ROOT/DEBIAN/$s"; done
echo /etc/hazgate/site.toml > "$ROOT/DEBIAN/conffiles"

# The newest glibc symbol version the binary needs is the libc6 it depends on.
GLIBC=$("$OBJDUMP" -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: hazgate
Version: $VERSION
Architecture: $ARCH
Maintainer: hazgate developers <hazgate@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= $GLIBC), passwd, procps
Recommends: systemd
Section: net
Priority: optional
Homepage: https://localhost/hazgate
Description: edge gateway for major-hazard-source monitoring (重大危险源监测)
 Polls gas detectors, tank transmitters and SIS / ESD signals over Modbus TCP, RTU and
 RTU over TCP; judges alarms (ISA-18.2 states, GB/T 50493-2019 setpoints) and the
 red / orange / yellow / blue risk of each hazard source; sends it all over MQTT with a
 durable spool, and keeps a local history for threshold tuning.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "target/deb/hazgate_${VERSION}_${ARCH}.deb" >/dev/null
echo "target/deb/hazgate_${VERSION}_${ARCH}.deb"
