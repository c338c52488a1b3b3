#!/usr/bin/env bash
# Installs the pinned nfpm (the .deb builder) once, into a cache outside the tree, and prints
# its path. v2.45.2: later versions need a module the Go proxy here refuses.
set -euo pipefail
version=v2.45.2
dir="${SENTINEL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sentinel-tools}/nfpm-$version"
if [ ! -x "$dir/nfpm" ]; then
  echo "installing nfpm $version into $dir" >&2
  mkdir -p "$dir"
  GOBIN="$dir" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$version" >&2
fi
echo "$dir/nfpm"
