#!/usr/bin/env bash
# Inside a transcoding job: decode, colour, scale to 720p, encode with the
# encoder of your choice (ENCODER, default VP8 in WebM).
#
#   ENCODER="x264enc ! mp4mux" examples/transcode.sh in.mkv out.mp4
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,6p' "$0"; exit 2; }
in="$1"; out="$2"; shift 2
source "$(dirname "$0")/env.sh"
enc="${ENCODER:-vp8enc deadline=1 cpu-used=4 ! webmmux}"
# OpenMP threads that wait spin ~3 ms by default, CPU the encoder needs on a
# machine with few cores; a shorter spin made colorize ! vp8enc 1.3-1.6x
# faster on 2 cores (README, Threads)
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-3000}"
# shellcheck disable=SC2086
gst-launch-1.0 -q filesrc location="$in" ! decodebin ! videoconvert ! \
  colorize "$@" ! videoscale ! video/x-raw,height=720,pixel-aspect-ratio=1/1 ! \
  videoconvert ! $enc ! filesink location="$out"
echo "coloured: $out"
