#!/usr/bin/env bash
# Colour a grayscale film: any file GStreamer can decode -> VP8/WebM.
#
#   examples/film.sh INPUT OUTPUT.webm [colorize properties...]
#   examples/film.sh old.mp4 old-colour.webm smoothing=0.9
#
# FRAMES=N stops after N frames (for a quick look).  A plain pipeline: the
# video alone.  For a whole film with its sound and subtitles, lossless,
# with progress, on one machine or many, use gst-colorize-film (README).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
in="$1"; out="$2"; shift 2
source "$(dirname "$0")/env.sh"
limit=()
[ -n "${FRAMES:-}" ] && limit=(identity eos-after=$((FRAMES + 1)) !)  # EOS replaces the Nth+1 buffer
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  "${limit[@]}" colorize "$@" ! videoconvert ! \
  vp8enc deadline=1 cpu-used=4 target-bitrate=1500000 ! webmmux ! \
  filesink location="$out"
echo "coloured: $out"
