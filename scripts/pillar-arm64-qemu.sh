#!/bin/sh
# The arm64 pillar agent (bin/sentinel-pillar-linux-arm64, make build-pillar-arm64) run under
# qemu-user, its OpenCV and C libraries from the arm64 sysroot (scripts/install-opencv-arm64.sh).
# make test-face-arm64 gives it to the face e2e tests as SENTINEL_PILLAR_BIN, so the arm64
# build passes people by face, end to end, as the amd64 one does. Arguments go to sentinel.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
sysroot=${ARM64_SYSROOT:-/var/cache/sentinel/sysroot-arm64}
bin=${SENTINEL_PILLAR_ARM64:-$here/bin/sentinel-pillar-linux-arm64}
[ -d "$sysroot/usr/lib/aarch64-linux-gnu" ] || { echo "pillar-arm64-qemu: no arm64 sysroot at $sysroot: run scripts/install-opencv-arm64.sh" >&2; exit 2; }
[ -x "$bin" ] || { echo "pillar-arm64-qemu: $bin missing: run make build-pillar-arm64" >&2; exit 2; }
LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/lib/aarch64-linux-gnu:/usr/lib
export LD_LIBRARY_PATH
exec qemu-aarch64-static -L "$sysroot" "$bin" "$@"
