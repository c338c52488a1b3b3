#!/usr/bin/env bash
# Builds dist/sentinel-pillar_<version>_<arch>.deb for each architecture given (amd64, arm64)
# from the pillar binaries make builds (bin/sentinel-pillar, bin/sentinel-pillar-linux-arm64):
# the same package as sentinel (build/nfpm.yaml), named sentinel-pillar, depending on the
# OpenCV runtime libraries the face detector links and on opencv-data (its cascades). It
# conflicts with (and replaces) the static sentinel package: one agent per unit.
#   scripts/package-pillar.sh amd64 arm64
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 amd64|arm64 ..." >&2; exit 2; }
nfpm=$(scripts/install-nfpm.sh)
export PKG_VERSION="${PKG_VERSION:-$(scripts/pkg-version.sh)}"
mkdir -p dist
for arch in "$@"; do
  case "$arch" in
    amd64) bin=bin/sentinel-pillar ;;
    arm64) bin=bin/sentinel-pillar-linux-arm64 ;;
    *) echo "package-pillar: unknown architecture $arch (amd64 or arm64)" >&2; exit 2 ;;
  esac
  [ -x "$bin" ] || { echo "package-pillar: $bin is missing: make build-pillar (or build-pillar-arm64)" >&2; exit 1; }
  out="dist/sentinel-pillar_${PKG_VERSION}_${arch}.deb"
  rm -f "$out"
  conf=$(mktemp dist/.nfpm-pillar-XXXXXX.yaml)
  sed -e "s|\${PKG_ARCH}|$arch|g" -e "s|\${PKG_VERSION}|$PKG_VERSION|g" -e "s|\${PKG_BINARY}|$bin|g" \
    -e 's|^name: sentinel$|name: sentinel-pillar|' build/nfpm.yaml >"$conf"
  cat >>"$conf" <<'DEPS'
depends:
  - libopencv-objdetect406
  - libopencv-imgproc406
  - libopencv-core406
  - opencv-data
conflicts: [sentinel]
replaces: [sentinel]
provides: [sentinel]
DEPS
  if ! log=$("$nfpm" package --config "$conf" --packager deb --target "$out" 2>&1); then
    rm -f "$conf"
    echo "package-pillar: nfpm failed for $arch:" >&2; echo "$log" >&2; exit 1
  fi
  rm -f "$conf"
  echo "$out"
done
