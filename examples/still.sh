#!/usr/bin/env bash
# Colour a still image (PNG, JPEG, ... in; PNG out).
#
#   examples/still.sh photo.jpg photo-colour.png [colorize properties...]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,5p' "$0"; exit 2; }
in="$1"; out="$2"; shift 2
source "$(dirname "$0")/env.sh"
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  colorize "$@" ! videoconvert ! video/x-raw,format=RGB ! pngenc ! \
  filesink location="$out"
echo "coloured: $out"
