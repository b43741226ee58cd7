#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is needed, build,
# colour the shipped grayscale clip with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
mkdir -p out
bash examples/film.sh examples/data/tree-gray.webm out/tree-colour.webm
bash examples/still.sh examples/data/tree-frame-gray.png out/tree-frame-colour.png >/dev/null
echo "Result: $PWD/out/tree-colour.webm (one frame as a picture: $PWD/out/tree-frame-colour.png)"
