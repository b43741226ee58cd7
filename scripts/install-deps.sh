#!/usr/bin/env bash
# Installs the Debian 12 packages gst-colorize needs (only those missing).
#   scripts/install-deps.sh           build and run
#   scripts/install-deps.sh --tests   also what the tests need (PyTorch and
#                                     protobuf for the training and converter
#                                     tests, indent, clang and its libFuzzer)
#   scripts/install-deps.sh --convert what the model converters need
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev
      libglib2.0-dev libjson-glib-dev libopenblas-openmp-dev libdnnl-dev
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-libav)
if [ "${1:-}" = "--tests" ]; then
  pkgs+=(python3-torch python3-numpy python3-opencv python3-protobuf
         protobuf-compiler indent clang libclang-rt-14-dev
         python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 parallel mkvtoolnix)
fi
if [ "${1:-}" = "--convert" ]; then
  pkgs+=(python3-torch python3-numpy python3-protobuf protobuf-compiler curl)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
