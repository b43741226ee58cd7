#!/usr/bin/env bash
# Every test on a fresh Debian 12 machine: install what is needed, build with
# warnings as errors, check the C formatting, run `meson test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
if [ -f build-tests/build.ninja ]; then
  meson setup --reconfigure build-tests -Dwerror=true >/dev/null
else
  meson setup build-tests -Dwerror=true >/dev/null
fi
ninja -C build-tests
bash scripts/check-format.sh
meson test -C build-tests --print-errorlogs
