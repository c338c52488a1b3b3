#!/usr/bin/env bash
# Installs the Debian packages a target needs, when they are missing. Needs root (or sudo) the
# first time; does nothing when everything is there.
#   scripts/install-deps.sh test    mosquitto (the end-to-end tests' broker), chromium and the
#                                   CJK fonts (the verdict screen's browser test and screenshots),
#                                   sqlite3 (an outside reader of the live queue, as a field
#                                   engineer would run it)
#   scripts/install-deps.sh cross   mosquitto and qemu-user-static (the ARM binaries under qemu)
#   scripts/install-deps.sh package dpkg and the shadow tools (install the .deb into a throw-away root)
#   scripts/install-deps.sh cluster rabbitmq-server (three nodes on loopback for make test-cluster;
#                                   its MQTT plugin is bundled) and mosquitto
#   scripts/install-deps.sh face    OpenCV for the pillar build (libopencv-dev, opencv-data with
#                                   its face cascades) and the public test photos (python3-skimage,
#                                   opencv-doc); ~3 min from a clean machine
#   scripts/install-deps.sh face-cross  the arm64 C++ cross compiler and qemu-user-static (the
#                                   arm64 OpenCV itself is a sysroot: scripts/install-opencv-arm64.sh)
set -euo pipefail
want=()
rec=() # installed with their recommended packages, as the browser test was measured with
case "${1:-}" in
  test)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
    command -v sqlite3 >/dev/null 2>&1 || want+=(sqlite3)
    command -v chromium >/dev/null 2>&1 || rec+=(chromium fonts-noto-cjk) ;;
  cross)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
    command -v qemu-aarch64-static >/dev/null 2>&1 && command -v qemu-arm-static >/dev/null 2>&1 || want+=(qemu-user-static) ;;
  package) command -v dpkg-deb >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1 || want+=(dpkg passwd) ;;
  cluster)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -x /usr/sbin/rabbitmq-server ] || want+=(rabbitmq-server) ;;
  face)
    [ -f /usr/include/opencv4/opencv2/objdetect.hpp ] && [ -f /usr/lib/x86_64-linux-gnu/libopencv_objdetect.so ] || want+=(libopencv-dev)
    [ -f /usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml ] || want+=(opencv-data)
    [ -f /usr/lib/python3/dist-packages/skimage/data/astronaut.png ] || want+=(python3-skimage)
    [ -f /usr/share/doc/opencv-doc/examples/data/messi5.jpg ] || want+=(opencv-doc) ;;
  face-cross)
    command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || want+=(g++-aarch64-linux-gnu)
    command -v qemu-aarch64-static >/dev/null 2>&1 || want+=(qemu-user-static) ;;
  *) echo "usage: $0 test|cross|package|cluster|face|face-cross" >&2; exit 2 ;;
esac
[ ${#want[@]} -eq 0 ] && [ ${#rec[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${want[*]} ${rec[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
# policy-rc.d keeps the package from starting a system-wide broker on port 1883.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
[ ${#want[@]} -eq 0 ] || $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${want[@]}" >/dev/null
[ ${#rec[@]} -eq 0 ] || $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${rec[@]}" >/dev/null
