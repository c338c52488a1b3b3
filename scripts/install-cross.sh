#!/usr/bin/env bash
# Installs Debian's cross compiler and C library for an ARM target when missing.
#   scripts/install-cross.sh arm64|armhf
set -euo pipefail
case "${1:-}" in
  arm64) cc=aarch64-linux-gnu-gcc; pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
  armhf) cc=arm-linux-gnueabihf-gcc; pkgs=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
  *) echo "usage: $0 arm64|armhf" >&2; exit 2 ;;
esac
command -v "$cc" >/dev/null 2>&1 && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing the $1 cross compiler: ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
