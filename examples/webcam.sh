#!/usr/bin/env bash
# Colour a live webcam (shown as gray first, as an old camera would see it).
#
#   examples/webcam.sh [/dev/video0] [colorize properties...]
#
# Smoothing steadies the colours between frames; n-threads leaves cores free.
set -euo pipefail
dev="${1:-/dev/video0}"; shift || true
source "$(dirname "$0")/env.sh"
gst-launch-1.0 v4l2src device="$dev" ! videoconvert ! \
  video/x-raw,format=GRAY8 ! queue max-size-buffers=1 leaky=downstream ! \
  colorize smoothing=0.6 "$@" ! videoconvert ! autovideosink sync=false
