#!/usr/bin/env bash
# The default model's training, a little every working session, in the
# background.  One run lives outside the work tree ($CZ_TRAIN_DIR, default
# ~/.cache/gst-colorize/train): its checkpoint, learning curve and log.
#
#   models/train/continue.sh [HOURS]   start (or resume) for HOURS of wall time (default 8)
#   models/train/continue.sh --status  steps, crops, CPU hours, the last dev score
#   models/train/continue.sh --stop    end it cleanly: checkpoint and a dev score
#   models/train/continue.sh --export [T]  export the checkpoint (annealing temperature T,
#                                      default the shipped model's own) and score it through
#                                      the C engine beside the shipped model (on the photos' L*,
#                                      which the promotion rule reads, and on two films' grays)
#   models/train/continue.sh --pack    pack the training photos (start does it when needed)
#   models/train/continue.sh --new [HOURS]  keep the run in runs/ and start a new one with
#                                      today's RECIPE from its last weights
#
# A new run trains on a pack of the photos' whole frames, the long side kept up
# to CZ_LONG pixels (default 192: pack.py --long; train128x192.npy), not only
# their centre squares (CZ_LONG=0: the squares, train128.npy, as every run
# before the twelfth round of models/README.md); a resumed run keeps the pack
# it started with.
#
# CZ_ARGS: more train.py options for a new run (an arm of a recipe, e.g. --teacher
# PREFIX), kept with the run (run/args) and given again at every resume.
#
# Without a checkpoint the run starts from $CZ_INIT (default models/default.safetensors);
# --new starts from the previous run's last weights unless CZ_INIT says otherwise.  It runs
# at nice 19 in the idle scheduling class, so builds, tests and benchmarks keep
# the CPU (benchmarks pause it outright: bench/quiet.sh).  The recipe and why it
# was chosen: models/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${CZ_TRAIN_DIR:-$HOME/.cache/gst-colorize/train}
PHOTOS=${CZ_PHOTOS:-$ROOT/../shared/data/photos}
PY=/usr/bin/python3
RUN=$STATE/run
# the pack: the frames up to CZ_LONG (or what the run was started with), or the
# centre squares for 0
DEFAULT_LONG=192
use_pack() {
  case $1 in ''|*[!0-9]*) echo "CZ_LONG=$1: a number of pixels" >&2; exit 2 ;; esac
  LONG=$1 NAME=train128
  [ "$LONG" = 0 ] || NAME=train128x$LONG
  PACK=$STATE/$NAME.npy
  SOURCES=$STATE/$NAME.sources.json
}
if [ -f "$RUN/ckpt.pt" ]; then
  use_pack "$(cat "$RUN/pack-long" 2>/dev/null || echo 0)"   # runs before CZ_LONG: squares
else
  use_pack "${CZ_LONG:-$DEFAULT_LONG}"
fi
PIDFILE=$STATE/pid
SHIPPED=$ROOT/models/default.safetensors

# The recipe (models/README.md, "Choosing the recipe").  Changing it mid-run
# changes the schedule from the next sitting on.
RECIPE=(--crop native --sizes 64:0.8,128:0.2 --net-size 128 --input-scale 0.01
        --batch 32 --lr 4.2e-4 --wd 1e-3 --warmup 300 --steps 16000 --ema 0.999 --rebalance 0.75
        --gray-aug 0.25)

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && grep -q 'train\.py' "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

status() {
  local pid state=stopped
  pid=$(running_pid) && state="running (pid $pid)"
  echo "training: $state; state in $STATE"
  "$PY" - "$RUN" <<'EOF'
import json, os, sys
run = sys.argv[1]
try:
    st = json.load(open(os.path.join(run, "status.json")))
except OSError:
    sys.exit("no run yet")
print(f"step {st['step']}, {st['crops']:,} crops, {st['cpu_hours']:.2f} CPU hours, "
      f"{st['wall_hours']:.2f} h wall, schedule {100 * st['progress']:.1f} % done, "
      f"crop size {st['size']}" + (" (finished)" if st.get("finished") else ""))
curve = os.path.join(run, "curve.jsonl")
lines = open(curve).read().splitlines() if os.path.exists(curve) else []
if lines:
    d = json.loads(lines[-1])
    print(f"last dev score (step {d['step']}, {d['time']}): AuC {d['auc']:.2f}, "
          f"rebalanced AuC {d['auc_rebalanced']:.2f}, chroma {d['chroma']:.1f} "
          f"(true {d['chroma_true']:.1f}), net size {d['net_size']}")
EOF
}

stop() {
  local pid
  pid=$(running_pid) || { echo "training is not running"; return 0; }
  kill -CONT "$pid" 2>/dev/null || true   # a benchmark may have paused it
  kill -INT "$pid"
  echo "stopping $pid: it checkpoints and scores the dev photos first" >&2
  while kill -0 "$pid" 2>/dev/null; do sleep 2; done
  rm -f "$PIDFILE"
  status
}

export_model() {
  [ -f "$RUN/ckpt.pt" ] || { echo "no checkpoint in $RUN" >&2; exit 1; }
  local out=$STATE/candidate.safetensors cz=${CZ_PREDICT:-$ROOT/build/models/cz-predict}
  local t=${1:-}
  [ -x "$cz" ] || { echo "build the project first ($cz)" >&2; exit 1; }
  # evaluate.py runs each model at its own temperature: without T the
  # candidate gets the shipped model's, so the two are compared like for like
  local temp=(--temperature-of "$SHIPPED")
  [ -z "$t" ] || temp=(--temperature "$t")
  "$PY" "$ROOT/models/export.py" "$RUN/ckpt.pt" "$out" --dtype f16 "${temp[@]}" \
    --data "photos/train (models/README.md)"
  # the photos' L*, which the rule reads (its table is printed), then two
  # grays old films give the element (models/README.md, thirteenth and
  # fourteenth rounds): reported, not ruled on; each film is its JSON's name,
  # evaluate.py's options and a label
  local films=(ortho "--gray ortho" "an orthochromatic film's gray"
               gamma0.7 "--gamma 0.7" "L* at gamma 0.7") i
  "$PY" "$ROOT/models/eval/evaluate.py" "$out" "$PHOTOS/dev" --cz "$cz" \
    --json "$STATE/candidate.json" --against "$SHIPPED"
  for ((i = 0; i < ${#films[@]}; i += 3)); do
    # shellcheck disable=SC2086  # an option and its value
    "$PY" "$ROOT/models/eval/evaluate.py" "$out" "$PHOTOS/dev" --cz "$cz" ${films[i + 1]} \
      --json "$STATE/candidate-${films[i]}.json" --against "$SHIPPED" >/dev/null
  done
  "$PY" - "$STATE" "$out" "${films[@]}" <<'EOF'
import json, os, sys
def scores(name):
    r = json.load(open(os.path.join(sys.argv[1], name)))
    c, s = r["c_engine"], r["against"]["c_engine"]
    d = r["against"]["difference"]["auc_rebalanced"]
    return d, c, (f"candidate {c['auc']:.2f} / {c['auc_rebalanced']:.2f}, shipped {s['auc']:.2f} / "
                  f"{s['auc_rebalanced']:.2f}: rebalanced {d['diff']:+.2f} ({d['low']:+.2f} .. {d['high']:+.2f})")
films = sys.argv[3:]
for name, label in zip(films[0::3], films[2::3]):
    print(f"on {label}: {scores(f'candidate-{name}.json')[2]}")
d, c, line = scores("candidate.json")
# better by 0.2 rebalanced AuC, and by more than chance: the paired
# bootstrap's 95 % interval of the difference lies above 0
ok = d["diff"] >= 0.2 and d["low"] > 0 and c["auc"] >= 87
print(f"on the photos' L*: {line} -> "
      + (f"promote: cp {sys.argv[2]} models/default.safetensors" if ok else "keep the shipped model"))
EOF
}

# The training photos packed once (pack.py), the pixels and the sources beside
# them moved into place together: a pack without its sources is packed again.
pack() {
  mkdir -p "$STATE"
  [ -f "$PACK" ] && [ -f "$SOURCES" ] && return 0   # packs before --mix lack the sources
  echo "packing $PHOTOS/train into $PACK (a few minutes)" >&2
  local tmp=$STATE/$NAME.tmp.npy long=()
  [ "$LONG" = 0 ] || long=(--long "$LONG")
  nice -n 19 "$PY" "$ROOT/models/train/pack.py" "$PHOTOS/train" "$tmp" --size 128 "${long[@]}"
  mv "$STATE/$NAME.tmp.sources.json" "$SOURCES"
  mv "$tmp" "$PACK"
}

start() {
  local hours=${1:-8}
  if pid=$(running_pid); then
    echo "training is already running (pid $pid)"
    return 0
  fi
  pack
  local init=()
  # a new run gets its own seed (CZ_SEED, default the clock): from the same
  # start with the same seed a run repeats an earlier one to the digit (the
  # fifth and seventh runs did); a resumed run keeps its seed (train.py)
  mkdir -p "$RUN"
  if [ ! -f "$RUN/ckpt.pt" ]; then
    init=(--init "${CZ_INIT:-$SHIPPED}" --seed "${CZ_SEED:-$(date +%s)}")
    echo "${CZ_ARGS:-}" >"$RUN/args"
  fi
  local args=()
  [ ! -f "$RUN/args" ] || read -ra args <"$RUN/args" || true   # split at blanks, as given
  echo "$LONG" >"$RUN/pack-long"
  echo "=== $(date '+%F %T') start, $hours h, pack $NAME ${init[*]} ${args[*]}" >>"$STATE/train.log"
  nohup nice -n 19 chrt --idle 0 "$PY" "$ROOT/models/train/train.py" --pack "$PACK" \
    --out "$RUN" "${init[@]}" "${RECIPE[@]}" "${args[@]}" --threads "$(nproc)" --dev "$PHOTOS/dev" \
    --wall-minutes "$(awk "BEGIN { print $hours * 60 }")" >>"$STATE/train.log" 2>&1 &
  echo $! >"$PIDFILE"
  echo "training in the background (pid $!, log $STATE/train.log); --status, --stop"
}

new_run() {
  if pid=$(running_pid); then
    echo "training is running (pid $pid): --stop it first" >&2
    exit 1
  fi
  if [ -f "$RUN/ckpt.pt" ]; then
    local old
    old=$STATE/runs/$(date +%Y%m%d-%H%M%S)
    mkdir -p "$STATE/runs"
    mv "$RUN" "$old"
    echo "the previous run is kept in $old" >&2
    use_pack "${CZ_LONG:-$DEFAULT_LONG}"
    if [ -z "${CZ_INIT:-}" ]; then
      "$PY" "$ROOT/models/export.py" "$old/ckpt.pt" "$old/last-f32.safetensors" --dtype f32 \
        --temperature-of "$SHIPPED" --data "photos/train (models/README.md)"
      CZ_INIT=$old/last-f32.safetensors
    fi
  fi
  echo "=== $(date '+%F %T') new run from ${CZ_INIT:-$SHIPPED}" >>"$STATE/train.log"
  start "${1:-8}"
}

case "${1:-}" in
  --status) status ;;
  --stop) stop ;;
  --export) export_model "${2:-}" ;;
  --pack) pack ;;
  --new) new_run "${2:-8}" ;;
  -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" ;;
  *) start "${1:-8}" ;;
esac
