#!/usr/bin/env bash
# Builds dist/sentinel_<version>_<arch>.deb for each Debian architecture given (amd64, arm64,
# armhf) from the static binaries make builds (bin/sentinel-linux-{amd64,arm64,armv7}).
#   scripts/package.sh amd64 arm64 armhf
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 amd64|arm64|armhf ..." >&2; exit 2; }
nfpm=$(scripts/install-nfpm.sh)
export PKG_VERSION="${PKG_VERSION:-$(scripts/pkg-version.sh)}"
mkdir -p dist
for arch in "$@"; do
  case "$arch" in
    amd64) bin=bin/sentinel-linux-amd64 ;;
    arm64) bin=bin/sentinel-linux-arm64 ;;
    armhf) bin=bin/sentinel-linux-armv7 ;;
    *) echo "package: unknown architecture $arch (amd64, arm64 or armhf)" >&2; exit 2 ;;
  esac
  [ -x "$bin" ] || { echo "package: $bin is missing: run make package (it builds it)" >&2; exit 1; }
  out="dist/sentinel_${PKG_VERSION}_${arch}.deb"
  rm -f "$out"
  # nfpm expands the environment in some fields only: fill in every ${PKG_*} here.
  conf=$(mktemp dist/.nfpm-XXXXXX.yaml)
  sed -e "s|\${PKG_ARCH}|$arch|g" -e "s|\${PKG_VERSION}|$PKG_VERSION|g" -e "s|\${PKG_BINARY}|$bin|g" build/nfpm.yaml >"$conf"
  if ! log=$("$nfpm" package --config "$conf" --packager deb --target "$out" 2>&1); then
    rm -f "$conf"
    echo "package: nfpm failed for $arch:" >&2; echo "$log" >&2; exit 1
  fi
  rm -f "$conf"
  echo "$out"
done
