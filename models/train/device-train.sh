#!/usr/bin/env bash
# The one prepared training run for a GPU machine (run from the repo root):
# trains from a WebP pack, exports the fp16 model, keeps the checkpoint so a
# later run can resume.  Everything it makes goes under $OUT.
#
#   PACK=train160.npz MINUTES=8 bash models/train/device-train.sh
#
# Make the pack here first (48 MB for the 14,472 training photos at 160 px):
#   /usr/bin/python3 models/train/pack.py ../shared/data/photos/train train160.npz --size 160 --quality 80
set -euo pipefail
: "${OUT:?set OUT to the folder to write into}"
PACK="${PACK:-train160.npz}"
MINUTES="${MINUTES:-8}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT/run"
[ -f "${RESUME:-}" ] && cp "$RESUME" "$OUT/run/ckpt.pt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" models/train/train.py --pack "$PACK" --out "$OUT/run" --width 0.25 --size 128 \
  --batch "${BATCH:-128}" --lr "${LR:-2e-3}" --steps 1000000 --minutes "$MINUTES" \
  --ckpt-every 500 --threads 8 2>&1 | tee "$OUT/train.log"
"$PY" models/export.py "$OUT/run/ckpt.pt" "$OUT/default.safetensors" --dtype f16 \
  --data "photos/train (see models/README.md)"
ls -la "$OUT"
