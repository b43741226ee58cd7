#!/usr/bin/env bash
# Frames per second of the colorize element for 640x480 GRAY8 -> RGB with the
# default model, against the same pipeline without it (videoconvert doing
# GRAY8 -> RGB), in one run.  Whole-process wall time, median of RUNS.
#
#   bench/bench-element.sh [FRAMES=300] [RUNS=5] [extra colorize properties]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-300}"; runs="${2:-5}"; shift 2 || true
source examples/env.sh
src="videotestsrc pattern=ball num-buffers=$frames ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1"
sink="video/x-raw,format=RGB ! fakesink sync=false"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_one() {
  local t0 t1
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  gst-launch-1.0 -q $1 >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
with=(); without=()
for _ in $(seq "$runs"); do
  with+=("$(time_one "$src ! colorize $* ! $sink")")
  without+=("$(time_one "$src ! videoconvert ! $sink")")
done
a=$(printf '%s\n' "${with[@]}" | median)
b=$(printf '%s\n' "${without[@]}" | median)
awk -v a="$a" -v b="$b" -v n="$frames" 'BEGIN {
  printf "640x480 GRAY8 -> RGB, %d frames, median of runs (ms): colorize %d, videoconvert only %d\n", n, a, b
  printf "colorize: %.1f frames/s whole pipeline, %.2f ms/frame over the baseline; ratio %.2f\n", n * 1000 / a, (a - b) / n, a / b
}'
