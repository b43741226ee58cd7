#!/usr/bin/env bash
# How the element behaves when it does not have the machine to itself, in one
# run (640x480 GRAY8, default model, 2 threads):
#  - quiet vs beside one busy process (a shell loop at the same priority):
#    the share of its quiet frames/s it keeps;
#  - inside a transcode (colorize ! vp8enc threads=2): frames/s against
#    1 / (1/element + 1/encoder), the rate of the two run one after the other.
# With OTHER_BUILD=dir (a build tree of another revision) the same figures for
# that plugin come after, measured in the same run.
#
#   bench/quiet.sh bench/bench-contention.sh [FRAMES=200] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-200}"; runs="${2:-3}"
export GST_COLORIZE_MODEL="$PWD/models/default.safetensors"
src="videotestsrc pattern=ball num-buffers=$frames ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1"
enc="vp8enc threads=2 deadline=1 cpu-used=4"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fps() {     # fps PLUGIN_DIR PIPELINE: frames/s, median of RUNS whole runs
  local t=() t0 t1
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    GST_PLUGIN_PATH="$1" GST_REGISTRY="$1/bench-registry.bin" \
      gst-launch-1.0 -q $2 >/dev/null || { echo "failed: $2 (plugins from $1)" >&2; exit 1; }
    t1=$(date +%s%N)
    t+=("$(( (t1 - t0) / 1000000 ))")
  done
  printf '%s\n' "${t[@]}" | median | awk -v n="$frames" '{ printf "%.2f", n * 1000 / $1 }'
}
busy_start() { sh -c 'while :; do :; done' & busy=$!; }
busy_stop() { kill "$busy"; wait "$busy" 2>/dev/null || true; }
trap '[ -n "${busy:-}" ] && kill "$busy" 2>/dev/null' EXIT

report() {  # report NAME PLUGIN_DIR
  local dir=$2 quiet loaded el en tr
  [ -f "$dir/libgstcolorize.so" ] || { echo "no libgstcolorize.so in $dir" >&2; exit 1; }
  quiet=$(fps "$dir" "$src ! colorize n-threads=2 ! video/x-raw,format=RGB ! fakesink sync=false")
  busy_start
  loaded=$(fps "$dir" "$src ! colorize n-threads=2 ! video/x-raw,format=RGB ! fakesink sync=false")
  busy_stop
  el=$(fps "$dir" "$src ! colorize n-threads=2 ! video/x-raw,format=I420 ! fakesink sync=false")
  en=$(fps "$dir" "$src ! videoconvert ! video/x-raw,format=I420 ! $enc ! fakesink sync=false")
  tr=$(fps "$dir" "$src ! colorize n-threads=2 ! video/x-raw,format=I420 ! $enc ! fakesink sync=false")
  awk -v name="$1" -v q="$quiet" -v l="$loaded" -v el="$el" -v en="$en" -v tr="$tr" 'BEGIN {
    serial = 1 / (1 / el + 1 / en)
    printf "%-10s quiet %6.2f fps, beside a busy process %6.2f fps: keeps %3.0f %% (target >= 40 %%)\n", name, q, l, 100 * l / q
    printf "%-10s element %6.2f fps, vp8enc %6.2f fps, one after the other %6.2f fps; transcode %6.2f fps = %3.0f %% of that (target >= 80 %%)\n", name, el, en, serial, tr, 100 * tr / serial
  }'
}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $frames frames, median of $runs runs"
report "this tree" "$PWD/build/gst"
if [ -n "${OTHER_BUILD:-}" ]; then
  report "other" "$OTHER_BUILD/gst"
fi
