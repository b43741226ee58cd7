#!/usr/bin/env bash
# Colour a film on many cores or machines with GNU parallel: N chunks, each a
# gst-colorize-film --chunk K/N run, then --join (no re-encoding).
#
#   examples/film-parallel.sh IN OUT N [gst-colorize-film options...]
#   examples/film-parallel.sh old.mkv old-colour.mkv 8 --smoothing 0.95 --threads 1
#
# HOSTS="--sshlogin 4/alpha --sshlogin 4/beta" spreads the chunks over
# machines that see IN and OUT's folder at the same path (a shared disk) and
# have gst-colorize-film installed; by default they run here, as many at a
# time as there are cores (JOBS=N to change).  A chunk is written as
# OUT.part-K-of-N.mkv (K zero-padded); finished chunks are kept if another
# fails, and a rerun colours only the missing ones.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,13p' "$0"; exit 2; }
in=$(realpath "$1"); out=$(realpath -m "$2"); n=$3; shift 3
film=${FILM:-gst-colorize-film}
if ! command -v "$film" >/dev/null; then
  source "$(dirname "$0")/env.sh"
  film=$(cd "$(dirname "$0")/.." && pwd)/${COLORIZE_BUILD:-build}/tools/gst-colorize-film
fi
ks=$(seq -w 1 "$n")          # 01 02 ... 16: the parts sort in order
part=$(printf '%q' "$out").part-{}-of-$n.mkv
opts=$(printf '%q ' "$@")
# shellcheck disable=SC2086  # HOSTS is a list of options
parallel --halt now,fail=1 ${HOSTS:-} -j "${JOBS:-+0}" \
  --env GST_PLUGIN_PATH --env GST_COLORIZE_MODEL \
  "test -s $part || $film --quiet --chunk {}/$n $opts $(printf '%q' "$in") $part" ::: $ks
parts=()
for k in $ks; do parts+=("$out.part-$k-of-$n.mkv"); done
"$film" --join "$out" "${parts[@]}"
rm -f "${parts[@]}"
