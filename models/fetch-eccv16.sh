#!/usr/bin/env bash
# Download the authors' released ECCV16 model and convert it for the element.
#
#   models/fetch-eccv16.sh [OUTDIR=models/eccv16] [caffe|pth|both]
#
# Writes OUTDIR/eccv16-caffe.safetensors and/or OUTDIR/eccv16-pth.safetensors
# (fp32, 129 MB each); use one with  colorize model-file=...  (it runs at its
# own net size, 224).  Needs internet, curl, python3-torch, python3-protobuf
# and protobuf-compiler (scripts/install-deps.sh --convert).
#
# Checks: the .pth against the sha256 prefix its name carries (what
# torch.hub's check_hash verifies); the .caffemodel against its published
# size, 128,946,764 bytes.  Both converters then check every layer name and
# shape and refuse anything else.  The sha256 of each download is printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/eccv16}"
which="${2:-both}"
mkdir -p "$out"

CAFFE_URL="http://eecs.berkeley.edu/~rich.zhang/projects/2016_colorization/files/demo_v2/colorization_release_v2.caffemodel"
CAFFE_SIZE=128946764
PTH_URL="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth"
PTH_SHA256_PREFIX=9b330a0b

fetch() {  # url file: download unless already there
  [ -s "$2" ] && return 0
  curl -fL --retry 3 -o "$2.part" "$1"
  mv "$2.part" "$2"
}

if [ "$which" = caffe ] || [ "$which" = both ]; then
  f="$out/colorization_release_v2.caffemodel"
  fetch "$CAFFE_URL" "$f"
  size=$(stat -c %s "$f")
  [ "$size" -eq "$CAFFE_SIZE" ] || { echo "fetch-eccv16: $f is $size bytes, expected $CAFFE_SIZE" >&2; exit 1; }
  echo "sha256 $(sha256sum "$f" | cut -d' ' -f1)  $(basename "$f")"
  /usr/bin/python3 "$here/convert/caffe2cz.py" "$f" "$out/eccv16-caffe.safetensors"
fi
if [ "$which" = pth ] || [ "$which" = both ]; then
  f="$out/colorization_release_v2-9b330a0b.pth"
  fetch "$PTH_URL" "$f"
  sum=$(sha256sum "$f" | cut -d' ' -f1)
  [ "${sum:0:8}" = "$PTH_SHA256_PREFIX" ] || { echo "fetch-eccv16: $f has sha256 $sum, expected $PTH_SHA256_PREFIX..." >&2; exit 1; }
  echo "sha256 $sum  $(basename "$f")"
  /usr/bin/python3 "$here/convert/pth2cz.py" "$f" "$out/eccv16-pth.safetensors"
fi
echo "done: $(ls "$out"/*.safetensors | tr '\n' ' ')"
