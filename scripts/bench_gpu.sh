#!/usr/bin/env bash
# The training benchmark on one GPU (H100), in under 5 minutes: MPNet-base shape with random weights and the
# real tokenizer (bench_assets/tokenizer: the base model's weights do not travel), all three phases, ours vs
# plain sentence-transformers defaults; then variants of the speed options. Needs python with torch (CUDA),
# transformers, accelerate and pyyaml; wheels in .whl/ (datasets, sentence-transformers 6.2, see docs/bench.md)
# are installed first into /tmp/site.
#
#   OUT=/some/folder bash scripts/bench_gpu.sh       # bench*.json land in $OUT (default outputs/bench)
#   PYTHON=/path/to/python OUT=... bash scripts/bench_gpu.sh
#   DEVICE=cpu MODEL=tiny STEPS=2 WARMUP=1 BENCH_ARGS="--batch-size 4 --seq-len 16" bash scripts/bench_gpu.sh
#                                                      # ^ the CPU smoke test of this script
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/bench}
MODEL=${MODEL:-base}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
BENCH=("$PYTHON" scripts/bench.py --model "$MODEL" --tokenizer bench_assets/tokenizer --device "$DEVICE"
  --recipe recipes/gpu.yaml --steps "$STEPS" --warmup "$WARMUP")
# shellcheck disable=SC2206  # BENCH_ARGS: extra options, word-split on purpose (e.g. "--batch-size 4")
BENCH+=(${BENCH_ARGS:-})
ALL_GROUPED=(--set phase1.group_by_length=true --set phase2.group_by_length=true --set phase3.group_by_length=true)

"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# 1. The recipe as it is (ours) against plain defaults: the main figure (~1 min).
timeout 110 "${BENCH[@]}" --out "$OUT/bench.json"
# 2. Variants, each against the recipe (ours); a failure or timeout leaves the main result intact.
timeout 35 "${BENCH[@]}" --no-defaults "${ALL_GROUPED[@]}" --out "$OUT/bench_grouped.json" || echo "grouped: failed"
timeout 35 "${BENCH[@]}" --no-defaults --precision bf16 --out "$OUT/bench_bf16.json" || echo "bf16: failed"
timeout 35 "${BENCH[@]}" --no-defaults --set phase1.dataloader_workers=2 --set phase2.dataloader_workers=2 \
  --set phase3.dataloader_workers=2 --out "$OUT/bench_workers.json" || echo "workers: failed"
if [ "$DEVICE" = cuda ]; then
  timeout 80 "${BENCH[@]}" --no-defaults --phases 2 --set phase2.torch_compile=true --out "$OUT/bench_compile.json" \
    || echo "compile: failed or over its 80 s"
fi
ls -l "$OUT"
