#!/usr/bin/env bash
# Makes an arm64 sysroot with Debian 12's OpenCV (headers and runtime libraries, with their
# whole dependency closure) for the arm64 pillar build, and prints its path. Idempotent: a
# sysroot made from the same package list is reused.
#
# Why a sysroot and not `apt-get install libopencv-dev:arm64`: libopencv-dev is not
# Multi-Arch, and libopencv-imgcodecs406:arm64 needs libgdal32:arm64, which conflicts with
# the amd64 one, so installing arm64 OpenCV beside the amd64 OpenCV removes the latter (apt
# proposes exactly that). Instead apt resolves the arm64 closure against an empty package
# status, downloads the .debs (apt-get --download-only, Debian's archive only) and unpacks
# them with dpkg-deb into the sysroot; nothing is installed on the host.
#   SENTINEL_ARM64_SYSROOT  where (default /var/cache/sentinel/sysroot-arm64)
set -euo pipefail
root=${SENTINEL_ARM64_SYSROOT:-/var/cache/sentinel/sysroot-arm64}
# The OpenCV modules gocv's main package compiles and links against (opencv2/opencv.hpp
# includes the headers of photo, ml, stitching and flann too), and the C/C++ runtime.
pkgs=(libopencv-core-dev libopencv-imgproc-dev libopencv-objdetect-dev libopencv-imgcodecs-dev
  libopencv-videoio-dev libopencv-highgui-dev libopencv-dnn-dev libopencv-calib3d-dev
  libopencv-features2d-dev libopencv-video-dev libopencv-photo-dev libopencv-ml-dev
  libopencv-stitching-dev libopencv-flann-dev libstdc++6 libc6)
want="sysroot-v4 ${pkgs[*]}"
if [ -f "$root/.sentinel-sysroot" ] && [ "$(cat "$root/.sentinel-sysroot")" = "$want" ]; then
  echo "$root"; exit 0
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
fi
echo "install-opencv-arm64: resolving and downloading the arm64 OpenCV closure" >&2
$sudo apt-get update -qq
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/status"
mkdir -p "$work/archives/partial"
$sudo apt-get -y -qq --no-install-recommends --download-only \
  -o Dir::State::status="$work/status" -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
  -o Dir::Cache::archives="$work/archives" -o Debug::NoLocking=1 \
  install "${pkgs[@]/%/:arm64}" >&2
new="$root.new"
$sudo rm -rf "$new"; $sudo mkdir -p "$new"
n=0
for deb in "$work"/archives/*.deb; do
  # The C and C++ development files come from the cross toolchain (libc6-dev-arm64-cross):
  # a second copy here would be linked statically in their place.
  case "${deb##*/}" in libc6-dev_* | linux-libc-dev_* | libgcc-*-dev_* | libstdc++-*-dev_* | libcrypt-dev_*) continue ;; esac
  $sudo dpkg-deb -x "$deb" "$new"; n=$((n + 1))
done
# Absolute symlinks would point into the host's root: make them relative to the sysroot.
while IFS= read -r link; do
  target=$(readlink "$link")
  case "$target" in /*) $sudo ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$new$target")" "$link" ;; esac
done < <(find "$new" -type l)
$sudo rm -rf "$new/usr/share/doc" "$new/usr/share/man" "$new/usr/share/locale"
# BLAS and LAPACK are found through update-alternatives links that the packages' scripts would
# make: make the default ones.
for lib in blas/libblas.so.3 lapack/liblapack.so.3; do
  [ -e "$new/usr/lib/aarch64-linux-gnu/$lib" ] && $sudo ln -sfn "$lib" "$new/usr/lib/aarch64-linux-gnu/${lib#*/}"
done
# Linker scripts (libc.so and the like, from libc6-dev) name absolute paths: the cross
# toolchain's own C library is the one to link with.
{ grep -l "GNU ld script" "$new"/usr/lib/aarch64-linux-gnu/*.so 2>/dev/null || true; } | while IFS= read -r f; do $sudo rm -f "$f"; done
echo "$want" | $sudo tee "$new/.sentinel-sysroot" >/dev/null
$sudo rm -rf "$root"; $sudo mv "$new" "$root"
echo "install-opencv-arm64: $n packages unpacked into $root" >&2
echo "$root"
