#!/usr/bin/env bash
# The one prepared training run for a GPU machine (run from the repo root):
# the recipe of the GPU run that reached rebalanced AuC ~66 (whole photos at
# the element's net size, input (L - 50)/100, AdamW 4.2e-4, batch 128), from a
# WebP pack, starting from the shipped model.  The photos stay on the GPU;
# the dev photos are scored on the CPU every EVAL minutes.  Training is
# stopped (SIGINT: it checkpoints) MINUTES + 1.5 minutes after it starts whatever
# happens, so the exports always run.  What it makes goes under $OUT: the fp16
# model to ship, an fp32 copy to go on training from (--init), both at the
# shipped model's temperature (scored against it like for like), the learning
# curve and the log.
#
#   PACK=.devcarry/train128.npz DEV=.devcarry/dev MINUTES=7 bash models/train/device-train.sh
#
# Make the pack and copy the dev photos here first (git ignores .devcarry):
#   mkdir -p .devcarry && echo /.devcarry/ >> .git/info/exclude
#   /usr/bin/python3 models/train/pack.py ../shared/data/photos/train .devcarry/train128.npz --size 128 --quality 80
#   cp -r ../shared/data/photos/dev .devcarry/
# and name .devcarry in the device call's carry.
set -uo pipefail
: "${OUT:?set OUT to the folder to write into}"
PACK="${PACK:-.devcarry/train128.npz}"
DEV="${DEV:-.devcarry/dev}"
MINUTES="${MINUTES:-7}"
EVAL="${EVAL:-2}"
TAG="${TAG:-}"          # names this run's files when one call makes several
DTYPES="${DTYPES:-f16 f32}"
PY="${PYTHON:-python3}"
RUN=/tmp/cz-run$TAG
mkdir -p "$RUN"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
INIT=()
[ -f "$RUN/ckpt.pt" ] || INIT=(--init models/default.safetensors)
export PYTHONUNBUFFERED=1
timeout -s INT -k 30 "$(awk "BEGIN { print int($MINUTES * 60 + 90) }")" \
  "$PY" models/train/train.py --pack "$PACK" --out "$RUN" "${INIT[@]}" --width 0.25 \
  --crop native --sizes 128 --input-scale 0.01 --batch "${BATCH:-128}" --lr "${LR:-4.2e-4}" \
  --wd 1e-3 --steps "${STEPS:-40000}" --minutes "$MINUTES" --ckpt-minutes 1 --threads 16 \
  --dev "$DEV" --eval-minutes "$EVAL" --log-every 200 2>&1 | tee "$OUT/train$TAG.log"
echo "train.py exit ${PIPESTATUS[0]}"
cp "$RUN/curve.jsonl" "$OUT/curve$TAG.jsonl"
for t in $DTYPES; do
  "$PY" models/export.py "$RUN/ckpt.pt" "$OUT/model$TAG-$t.safetensors" --dtype $t \
    --temperature-of models/default.safetensors --data "photos/train (see models/README.md)"
done
ls -la "$OUT"
