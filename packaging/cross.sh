#!/usr/bin/env bash
# Cross-builds the gateway (edge build, release) for an ARM gateway.
#
#   packaging/cross.sh [TARGET]     aarch64-unknown-linux-gnu (default) or
#                                   armv7-unknown-linux-gnueabihf
#
# rustup cannot fetch another target's standard library here, so the standard library
# is built from source: Debian's rustc-web / cargo-web (1.96) with rust-web-src, under
# -Zbuild-std (RUSTC_BOOTSTRAP=1 lets a stable compiler take the flag), linked by
# Debian's cross gcc. Installs those packages when missing. The binary lands in
# target/cross/TARGET/release/hazgate; run it with qemu-user (`qemu-aarch64 -L
# /usr/aarch64-linux-gnu target/cross/…/hazgate poll …`).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-aarch64-unknown-linux-gnu}
case "$TARGET" in
  aarch64-unknown-linux-gnu) GNU=aarch64-linux-gnu; LIBC=libc6-dev-arm64-cross ;;
  armv7-unknown-linux-gnueabihf) GNU=arm-linux-gnueabihf; LIBC=libc6-dev-armhf-cross ;;
  *) echo "cross: unsupported target $TARGET" >&2; exit 2 ;;
esac
need=()
for p in rustc-web cargo-web rust-web-src "gcc-$GNU" "$LIBC" qemu-user; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
T=$(echo "$TARGET" | tr 'a-z-' 'A-Z_')
t=$(echo "$TARGET" | tr '-' '_')
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export "CARGO_TARGET_${T}_LINKER=$GNU-gcc" "CC_$t=$GNU-gcc" "AR_$t=$GNU-ar"
/usr/bin/cargo build --release --quiet -Zbuild-std --target "$TARGET" \
  --no-default-features --features edge --target-dir target/cross
ls -l "target/cross/$TARGET/release/hazgate"
