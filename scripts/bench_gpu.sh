#!/usr/bin/env bash
# The speed check on one GPU (H100), as one device call of at most 10 minutes (timeout_s=600): MPNet-base
# shape with random weights and the real tokenizer (bench_assets/tokenizer), as the base model's weights do not
# travel to that machine. Figures of the last call and what they showed: results/bench/h100/README.md.
#   1. bench.json       all phases, ours (recipes/gpu.yaml) vs plain sentence-transformers defaults, then 5
#                       profiled steps of ours (device busy time, top operators); about 2 minutes
#   1b. bench_reference.json  phase 2, ours vs the reference row: the same model, loss and batch in a bare
#                       PyTorch loop (fixed shapes, fused AdamW, torch.compile on CUDA), the ceiling ours is
#                       read against (ours/reference, docs/bench.md); compiling takes a minute or so.
#                       REFERENCE=0 skips it.
#   2. train_gpu.json   the whole recipes/gpu.yaml training (its run.json) with a random-weight model: the time
#                       (about 6-7 minutes projected from results/bench/h100/)
#   2b. eval_gpu.json   the evaluation of the base model (a random-weight stand-in) and every phase, cold, timed
#                       (its results.json; `timing` holds the seconds per model)
#   3. bench_variants.tar  one speed option at a time against the recipe (no defaults run), one JSON each:
#                       tokenize once, workers, batch 256, fused AdamW, sdpa, compile with length buckets,
#                       bf16, grouping
# Every step has a time cap and the whole script a deadline (DEADLINE seconds); a step that fails or runs out
# leaves the earlier results intact. Needs python with torch (CUDA), transformers, accelerate and pyyaml; the
# wheels in .whl/ (datasets, sentence-transformers 6.2, see docs/bench.md) are installed first into /tmp/site.
#
#   OUT=/some/folder bash scripts/bench_gpu.sh       # results land in $OUT (default outputs/bench)
#   DEVICE=cpu MODEL=tiny STEPS=2 WARMUP=1 CAP_SCALE=3 DEADLINE=1500 BENCH_ARGS="--batch-size 4 --seq-len 16" \
#     TRAIN_ARGS="--set model=tiny --set phase1.max_steps=2 ..." bash scripts/bench_gpu.sh   # CPU smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/bench}
MODEL=${MODEL:-base}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
DEADLINE=${DEADLINE:-570}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
WHEELS=${WHEELS:-.whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/medenc-gpu-XXXX)

# step NAME CAP CMD...: run CMD under min(CAP x CAP_SCALE, time left before DEADLINE); a failure is reported,
# not fatal. The caps fit the H100; the 2-core CPU smoke test scales them (4 loader workers start slowly there).
step() {
  local name=$1 cap=$(($2 * ${CAP_SCALE:-1})) left=$((DEADLINE - SECONDS))
  shift 2
  ((cap < left)) || cap=$left
  if ((cap < 20)); then echo "== $name: skipped, ${left}s left before the deadline"; return 0; fi
  echo "== $name (cap ${cap}s, at ${SECONDS}s)"
  timeout "$cap" "$@" || echo "== $name: failed or over its ${cap}s (exit $?)"
}

"$PYTHON" -c "import torch, transformers, sentence_transformers as st, accelerate, datasets
print('torch', torch.__version__, 'transformers', transformers.__version__, 'st', st.__version__,
      'accelerate', accelerate.__version__, 'datasets', datasets.__version__)
print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv || true; fi

BENCH=("$PYTHON" scripts/bench.py --model "$MODEL" --device "$DEVICE" --recipe recipes/gpu.yaml
  --steps "$STEPS" --warmup "$WARMUP")
# shellcheck disable=SC2206  # BENCH_ARGS: extra options, word-split on purpose (e.g. "--batch-size 4")
BENCH+=(${BENCH_ARGS:-})
# The reference row (phase 2, compiled on CUDA) runs in step 1b only: the other steps pass --no-reference.
WITH_REFERENCE=("${BENCH[@]}")
BENCH+=(--no-reference)
every_phase() { for n in 1 2 3; do printf -- '--set\nphase%s.%s\n' "$n" "$1"; done; }

# 1. The recipe as it is (ours) against plain defaults: the main figure.
step "bench: ours vs defaults" 150 "${BENCH[@]}" --profile-steps 5 --out "$OUT/bench.json"

# 1b. Phase 2 against its bare-loop reference (ours is measured again in the same process, so the ratio compares
# like with like). Before the training step, so that when time runs short the deadline cuts the training
# (its phases 1-2 were measured before: results/bench/h100/), not this ratio.
if [ "${REFERENCE:-1}" != 0 ]; then
  step "bench: phase 2, ours vs bare-loop reference" 150 "${WITH_REFERENCE[@]}" --phases 2 --no-defaults \
    --out "$OUT/bench_reference.json"
fi

# 2. The whole GPU recipe, timed. Random embeddings all sit close together, so the miner's similarity filters
# (max_score, relative_margin) would reject nearly every negative and phase 3 would shrink; they are lifted so
# phase 3 trains on about as many triplets as with the real model (which kept 742 of 800 anchors on the CPU run).
# shellcheck disable=SC2206  # TRAIN_ARGS: extra --set options for the CPU smoke test
TRAIN=("$PYTHON" -m accelerate.commands.launch --config_file accelerate_config.yaml --num_processes 1
  scripts/train.py --recipe recipes/gpu.yaml --run gpu-timing --output-dir "$WORK" --set "model=random-base"
  --set phase3.mining.max_score=null --set phase3.mining.relative_margin=null ${TRAIN_ARGS:-})
step "train: recipes/gpu.yaml, random weights" 420 "${TRAIN[@]}" >"$OUT/train.log" 2>&1 || true
tail -n 5 "$OUT/train.log"
if [ -f "$WORK/gpu-timing/run.json" ]; then
  cp "$WORK/gpu-timing/run.json" "$OUT/train_gpu.json"
  # 2b. The evaluation of the base model and every phase on this device, cold (no embedding cache), timed per
  # model in results.json's `timing`. A random-weight model of the same shape stands in for the base model, so
  # the figures mean nothing; the time is the point. Its log goes on after the training's (8 files come back).
  "$PYTHON" -c "import sys; from medenc.core.modeling import build_random_model as b; b(sys.argv[1]).save(sys.argv[2])" \
    "$MODEL" "$WORK/random-base"
  # A run is named, never a path: the run folder's parent is OUTPUTS_DIR.
  step "evaluate: base + 3 phases" 180 env OUTPUTS_DIR="$WORK" "$PYTHON" -m accelerate.commands.launch \
    --config_file accelerate_config.yaml --num_processes 1 scripts/evaluate_run.py --run gpu-timing \
    --base-model "$WORK/random-base" --no-cache >>"$OUT/train.log" 2>&1 || true
  tail -n 2 "$OUT/train.log"
  if [ -f "$WORK/gpu-timing/eval/results.json" ]; then cp "$WORK/gpu-timing/eval/results.json" "$OUT/eval_gpu.json"; fi
fi
rm -rf "$WORK"

# 3. One option at a time, against the recipe.
VAR="$OUT/variants"
mkdir -p "$VAR"
mapfile -t SDPA < <(every_phase attention=sdpa)
mapfile -t GROUPED < <(every_phase group_by_length=true)
mapfile -t WORKERS < <(every_phase dataloader_workers=4)
mapfile -t FUSED < <(every_phase optimizer=adamw_torch_fused)
mapfile -t PRETOKENIZE < <(every_phase pretokenize=true)
# Ordered by what they can change; the deadline drops the last ones first.
# Tokenize once: the sets are tokenized (and cached) while the trainer is built, before the clock starts.
step "variant: tokenize once, every phase" 45 "${BENCH[@]}" --no-defaults "${PRETOKENIZE[@]}" \
  --out "$VAR/bench_pretokenize.json"
step "variant: 4 dataloader workers, every phase" 45 "${BENCH[@]}" --no-defaults "${WORKERS[@]}" \
  --out "$VAR/bench_workers.json"
step "variant: phase 2 batch 256" 40 "${BENCH[@]}" --no-defaults --phases 2 --set phase2.batch_size=256 \
  --out "$VAR/bench_b256.json"
step "variant: fused AdamW, every phase" 45 "${BENCH[@]}" --no-defaults "${FUSED[@]}" --out "$VAR/bench_fused.json"
step "variant: sdpa" 45 "${BENCH[@]}" --no-defaults "${SDPA[@]}" --out "$VAR/bench_sdpa.json"
if [ "$DEVICE" = cuda ]; then
  # Lengths padded to multiples of 32: at most 4 shapes up to 128 tokens, so compile runs a handful of times.
  step "variant: compile + length buckets (phase 2)" 90 "${BENCH[@]}" --no-defaults --phases 2 \
    --set phase2.torch_compile=true --set phase2.pad_to_multiple_of=32 --out "$VAR/bench_compile.json"
fi
step "variant: bf16" 40 "${BENCH[@]}" --no-defaults --precision bf16 --out "$VAR/bench_bf16.json"
step "variant: length-grouped" 40 "${BENCH[@]}" --no-defaults "${GROUPED[@]}" --out "$VAR/bench_grouped.json"
# The device returns at most 8 files: the variants travel as one archive.
tar -C "$OUT" -cf "$OUT/bench_variants.tar" variants && rm -rf "$VAR"
echo "== done at ${SECONDS}s"
ls -l "$OUT"
