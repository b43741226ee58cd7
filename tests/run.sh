#!/usr/bin/env bash
# Every test on a fresh Debian 12 machine:
#  1. install what is needed, build with warnings as errors, check the C
#     formatting, run `meson test` (all suites);
#  2. the C suites again, built with ASan + UBSan (GLib's slice allocator off,
#     so that it cannot hide a use-after-free; leaks reported);
#  3. the model loader under libFuzzer for CZ_FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
setup() {   # setup DIR OPTIONS...
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}
setup build-tests -Dwerror=true
ninja -C build-tests
bash scripts/check-format.sh
meson test -C build-tests --print-errorlogs

echo "== the C suites under AddressSanitizer and UndefinedBehaviorSanitizer"
setup build-sanitize -Dwerror=true -Dbuildtype=debugoptimized \
  -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-sanitize
# intercept_tls_get_addr=0: LeakSanitizer's own tracer crashed (signal 11 on
# a garbage dynamic-TLS range, glibc 2.36) walking an OpenMP worker that had
# run oneDNN, whose TLS lives in a dlopen()ed library; it then checks every
# thread's stack and static TLS, not the dynamic TLS blocks
G_SLICE=always-malloc G_DEBUG=gc-friendly GST_REGISTRY_FORK=no CZ_SANITIZE=1 \
  ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=30:intercept_tls_get_addr=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-sanitize --print-errorlogs core model element pipeline

echo "== the model loader under libFuzzer"
bash tests/fuzz.sh "${CZ_FUZZ_SECONDS:-60}"
