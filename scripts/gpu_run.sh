#!/usr/bin/env bash
# The real MPNet-medical on one GPU (issue 26), over the device calls docs/gpu.md lists (plan: .gpu_transport/
# manifest.json, written by `python scripts/gpu_transport.py pack`):
#   bash scripts/gpu_run.sh check N   calls 1..k-1: install the wheels, (call 1) import everything the main call
#                                     needs and print the versions, then verify piece N and pieces 1..N-1
#   bash scripts/gpu_run.sh main      the last call (at most 9 minutes):
#     1. assemble   join the pieces, verify the fp16 and fp32 hashes, publish the base folder, load it; unpack data
#     2. train      recipes/gpu.yaml, every phase, from the fp16-rounded base (MEDENC_BASE_MODEL)
#     3. evaluate   the base (the same fp16-rounded weights, via MEDENC_BASE_MODEL) and every finished phase
#     4. release    stage the card, charts and model (--dry-run: the machine has no network)
#     5. records    $OUT/gpu_records.tar.gz (folder $RUN/): run.json, recipe.yaml, eval/, loss histories, TensorBoard logs, the
#                   staged card and charts, the step logs (no weights); $OUT/console.log is the call's tee
# Every step has a cap (seconds x CAP_SCALE) and the call a DEADLINE; a step that fails or runs out leaves the
# earlier records intact, and the records archive is written whatever happened.
#
#   OUT=$OUT bash scripts/gpu_run.sh main 2>&1 | tee $OUT/console.log          # on the GPU machine
#   DEVICE=cpu CAP_SCALE=4 DEADLINE=1800 TRAIN_ARGS="--set model=tiny --set phase1.max_steps=2 ..." \
#     EVAL_ARGS="--base-model /tmp/tiny-base --bootstrap 20" RELEASE_ARGS=--test-release \
#     OUT=/tmp/out bash scripts/gpu_run.sh main                                 # CPU smoke test (docs/gpu.md)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-main}
OUT=${OUT:-outputs/gpu-call}
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-540}
WORK=${WORK:-/tmp/medenc-gpu}
RUN=${RUN:-gpu}
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  for p in .venv/bin/python /opt/torch/.venv/bin/python3; do if [ -x "$p" ]; then PYTHON=$p && break; fi; done
fi
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  # Installed once per machine (call 1); a later call finds the same wheel list in the stamp and skips it.
  if [ "$(ls "$WHEELS")" != "$(cat "$WORK/site/.wheels" 2>/dev/null)" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
      "$WHEELS"/*.whl
    ls "$WHEELS" >"$WORK/site/.wheels"
  fi
  PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
TRANSPORT=("$PYTHON" scripts/gpu_transport.py)

versions() {
  "$PYTHON" -c "import torch, transformers, sentence_transformers as st, accelerate, datasets, pydantic
import medenc.training, medenc.evaluation, medenc.release
print('python', __import__('sys').version.split()[0], 'torch', torch.__version__, 'transformers',
      transformers.__version__, 'st', st.__version__, 'accelerate', accelerate.__version__, 'datasets',
      datasets.__version__, 'pydantic', pydantic.__version__)
print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
  if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv || true
  fi
}

if [ "$MODE" = check ]; then
  N=${2:?usage: gpu_run.sh check N}
  if [ "$N" = 1 ]; then versions; fi
  exec "${TRANSPORT[@]}" check "$N"
fi
[ "$MODE" = main ] || { echo "usage: gpu_run.sh check N | main" >&2; exit 2; }

# step NAME CAP CMD...: run CMD under min(CAP x CAP_SCALE, time left before DEADLINE), print its seconds; a
# failure is reported, not fatal (the later steps decide from the files whether they can run).
step() {
  local name=$1 cap=$(($2 * ${CAP_SCALE:-1})) left=$((DEADLINE - SECONDS)) start=$SECONDS rc=0
  shift 2
  ((cap < left)) || cap=$left
  if ((cap < 15)); then echo "== $name: skipped, ${left}s left before the deadline"; return 0; fi
  echo "== $name (cap ${cap}s, at ${SECONDS}s)"
  # timeout signals the whole process group: accelerate's worker stops with its launcher.
  timeout --kill-after=15 "$cap" "$@" || rc=$?
  echo "== $name: $((SECONDS - start)) s (exit $rc)"
}

versions
BASE="$WORK/base-fp16"
export MEDENC_BASE_MODEL="$BASE" PREPARED_DIR="$WORK/prepared" OUTPUTS_DIR="$WORK/outputs"
RUN_DIR="$OUTPUTS_DIR/$RUN"
# The records travel as one folder named after the run, so `OUTPUTS_DIR=<unpacked> publish_results.py --run gpu`
# reads them as a run folder.
REC="$WORK/records/$RUN"
rm -rf "$WORK/records" && mkdir -p "$REC"
# The device's copy of the tree has no git history: the caller names the commit (COMMIT=...).
echo "${COMMIT:-unknown}" >"$REC/commit.txt"
step assemble 90 "${TRANSPORT[@]}" assemble --model-dir "$BASE" --prepared "$PREPARED_DIR" 2>&1 | tee "$REC/assemble.log"

LAUNCH=("$PYTHON" -m accelerate.commands.launch --config_file accelerate_config.yaml --num_processes 1)
# shellcheck disable=SC2206  # TRAIN_ARGS, EVAL_ARGS, RELEASE_ARGS: extra options, word-split on purpose
TRAIN=("${LAUNCH[@]}" scripts/train.py --recipe recipes/gpu.yaml --run "$RUN" ${TRAIN_ARGS:-})
# Training stops early enough to leave EVAL_RESERVE seconds for scoring what it finished, and the card.
TRAIN_CAP=$(((DEADLINE - SECONDS - ${EVAL_RESERVE:-150}) / ${CAP_SCALE:-1}))
((TRAIN_CAP < 420)) || TRAIN_CAP=420
if [ -f "$BASE/model.safetensors" ]; then
  step train "$TRAIN_CAP" "${TRAIN[@]}" >"$REC/train.log" 2>&1
  tail -n 5 "$REC/train.log"
fi

# A phase the deadline cut leaves a folder without weights; the evaluation scores finished phases only, so it
# is set aside (named .incomplete, and the records say so) rather than refused.
for d in "$RUN_DIR"/phase-*; do
  if [ -d "$d" ] && [ ! -f "$d/model.safetensors" ]; then echo "== $(basename "$d"): unfinished"; mv "$d" "$d.incomplete"; fi
done
# shellcheck disable=SC2206
EVAL=("${LAUNCH[@]}" scripts/evaluate_run.py --run "$RUN" --no-cache ${EVAL_ARGS:-})
if compgen -G "$RUN_DIR/phase-*/model.safetensors" >/dev/null; then
  step evaluate 150 "${EVAL[@]}" >"$REC/evaluate.log" 2>&1
  tail -n 3 "$REC/evaluate.log"
fi
# shellcheck disable=SC2206
RELEASE=("$PYTHON" scripts/release.py --run "$RUN" --repo-id "${REPO_ID:-org/mpnet-medical}" --dry-run ${RELEASE_ARGS:-})
if [ -f "$RUN_DIR/eval/results.json" ]; then
  step release 60 "${RELEASE[@]}" >"$REC/release.log" 2>&1
  tail -n 3 "$REC/release.log"
fi

# The records, without weights (8 files come back, 16 MiB each): everything small in the run folder.
if [ -d "$RUN_DIR" ]; then
  (cd "$RUN_DIR" && find . -type f -size -4M ! -name '*.safetensors' ! -name '*.bin' ! -name '*.pt' \
    ! -name '*.pth' ! -path '*/checkpoints/*' ! -name 'tokenizer.json' ! -name 'vocab.txt' -print0 |
    sort -z | xargs -0 -r cp --parents -t "$REC")
fi
tar -C "$WORK/records" -czf "$OUT/gpu_records.tar.gz" "$RUN"
echo "== done at ${SECONDS}s"
ls -l "$OUT"
