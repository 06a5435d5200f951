"""The names that tie the pipeline together: prepared data sets, their columns, and a run folder's layout.

Every module reads names from here, so that the data layer, training, evaluation and release agree by
construction rather than by convention.
"""

from __future__ import annotations

from pathlib import Path

from medenc.core.eval_sets import names_of_task

# --- Prepared data (written by `make data`, read by training and evaluation) -------------------------------
# Each set is a `datasets.Dataset` saved with `save_to_disk` at <prepared>/<split>/<name>.
GRADED_PAIRS = "graded_pairs"  # sentence1, sentence2, score in [0, 1], source
PAIRS = "pairs"  # anchor, positive, source
TRIPLETS = "triplets"  # anchor, positive, negative, source (curated negatives)

COLUMNS: dict[str, tuple[str, ...]] = {
    GRADED_PAIRS: ("sentence1", "sentence2", "score"),
    PAIRS: ("anchor", "positive"),
    TRIPLETS: ("anchor", "positive", "negative"),
}
TRAIN_SPLITS = ("train", "validation")

# Held-out test sets under <prepared>/test/: declared once in medenc/core/eval_sets.py (EVAL_SETS). The
# retrieval ones are three sets each: <name>_queries (id, text), <name>_corpus (id, text), <name>_qrels.
TEST_RETRIEVAL = names_of_task("retrieval")

# The max_seq_length every saved model folder carries, and the passage cap of the evaluation: training may use
# shorter lengths for speed, but users encode (and the card's figures were measured) at this length.
INFERENCE_MAX_SEQ_LENGTH = 256

MANIFEST = "manifest.json"
LEAKAGE_REPORT = "leakage_report.json"

# --- A run folder: outputs/<run>/ -----------------------------------------------------------------------
# Named by the phase alone: a recipe may change a phase's loss, never its number.
PHASE_DIRS = {1: "phase-1", 2: "phase-2", 3: "phase-3"}
# Their names in run folders written before (after phase 1's, 2's and 3's first losses), which
# medenc.core.runs.migrate_phase_dirs renames; published results keep them until published again.
OLD_PHASE_DIRS = {1: "phase-1-cosine", 2: "phase-2-mnrl", 3: "phase-3-triplet"}
FINAL_DIR = "final"
# The last phase averaged with the starting model (recipe key `average`, WiSE-FT), when that scored best on
# the validation split: scored as a model of its own, and then final/ is a copy of it.
AVERAGED_DIR = "averaged"
RUN_RECIPE = "recipe.yaml"  # the resolved recipe
RUN_RECORD = "run.json"  # precision, hardware, per-phase rows/steps/time/throughput, base and data hashes
LOSS_HISTORY = "loss_history.json"  # inside each phase folder: [{"step", "epoch", "loss"|"eval_loss"}...]
LOGS_DIR = "logs"  # TensorBoard event files, one folder per phase; the release ships them as runs/
EVAL_DIR = "eval"
RESULTS_FILE = "results.json"  # inside EVAL_DIR, and at the top of a release (docs/results_schema.md)
RELEASE_DIR = "release"
EXPORTS_DIR = "exports"  # onnx/ and openvino/ of final/ (medenc.export), copied into the release
WEIGHTS_FILE = "model.safetensors"  # the weights file of every saved model folder

# The released model's name, in the card, the sentence-transformers card data and the results.
MODEL_NAME = "MPNet-medical"


def training_seconds(record: dict) -> float:
    """A run's training time from its run.json: each phase's training plus phase 3's negative mining and
    the weight averaging's choice on the validation split."""
    phases = record.get("phases")
    if not phases:  # a record without per-phase times
        return float(record.get("total_seconds", 0.0))
    averaging = ((record.get("final") or {}).get("average") or {}).get("seconds", 0.0)
    return round(sum(p.get("seconds", 0.0) + p.get("mining_seconds", 0.0) for p in phases) + averaging, 1)


def phase_dir(run_dir: Path, phase: int) -> Path:
    """The folder where a phase saves its complete sentence-transformers model."""
    return run_dir / PHASE_DIRS[phase]
