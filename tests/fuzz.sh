#!/usr/bin/env bash
# The loader under libFuzzer (clang, ASan + UBSan) for a bounded time.
#   tests/fuzz.sh [SECONDS]        default 60
# Starts from the seed corpus (tests/fuzz/corpus, small valid models) with the
# header's tokens as a dictionary; what it finds is written under
# build-fuzz/findings.  Exits non-zero when it finds a crash, a leak, an
# out-of-bounds access, undefined behaviour or a hang.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out/corpus" "$out/findings"
cp -n tests/fuzz/corpus/* "$out/corpus/"
# shellcheck disable=SC2046
clang -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Icore \
  tests/fuzz/fuzz-model.c core/cz-model.c core/cz-topology.c \
  $(pkg-config --cflags --libs glib-2.0 gobject-2.0 json-glib-1.0) -lm \
  -o "$out/fuzz-model"
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
"$out/fuzz-model" "$out/corpus" -dict=tests/fuzz/model.dict \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/findings/" -print_final_stats=1 >"$out/fuzz.log" 2>&1 \
  || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$out/fuzz.log"
  echo "the fuzzer found a problem: $out/findings/ (log $out/fuzz.log)" >&2
  exit "$status"
fi
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$out/fuzz.log" | tail -n 2
grep -E '^stat::' "$out/fuzz.log"
