#!/usr/bin/env bash
# GStreamer's gst-indent style (GNU indent with GStreamer's options) for all
# C sources. Exits non-zero and shows the diff when a file is not formatted.
#   scripts/check-format.sh          check
#   scripts/check-format.sh --fix    reformat in place
set -euo pipefail
cd "$(dirname "$0")/.."
opts=(--braces-on-if-line --case-brace-indentation0 --case-indentation2
      --braces-after-struct-decl-line --line-length80 --no-tabs --cuddle-else
      --dont-line-up-parentheses --continuation-indentation4 --honour-newlines
      --tab-size8 --indent-level2 --leave-preprocessor-space)
status=0
for f in core/*.c gst/*.c tools/*.c tests/*.c tests/fuzz/*.c bench/*.c models/eval/*.c; do
  # indent is not idempotent on every construct: format twice, as gst-indent
  formatted=$(indent "${opts[@]}" -st "$f" | indent "${opts[@]}" -st -)
  if [ "${1:-}" = "--fix" ]; then
    printf '%s\n' "$formatted" > "$f"
  elif ! diff -u "$f" <(printf '%s\n' "$formatted") >/dev/null; then
    echo "not gst-indent formatted: $f (run scripts/check-format.sh --fix)" >&2
    diff -u "$f" <(printf '%s\n' "$formatted") | head -20 >&2
    status=1
  fi
done
exit $status
