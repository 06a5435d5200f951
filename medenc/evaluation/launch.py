"""`make evaluate`'s entry point: the run named on the command line, scored on the main process only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medenc.core.lock import run_lock
from medenc.core.paths import run_folder
from medenc.core.runs import migrate_phase_dirs
from medenc.evaluation.results import Results, eval_dir
from medenc.evaluation.suite import run_evaluation


def resolve_run_dir(run: str) -> Path:
    """``outputs/<run>`` (``$OUTPUTS_DIR/<run>``), ``run`` a plain run name."""
    return run_folder(run)


def evaluate_run(run: str, *, output_dir: Path | None = None, **options: Any) -> tuple[Path, Results] | None:
    """Score the run ``run`` (see ``resolve_run_dir``) with ``run_evaluation(**options)``.

    Returns the folder written and the results, or None on the processes other than the main one.
    """
    # The fast tokenizers warn after a fork otherwise.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Evaluation is cheap next to training and its results are one file: under `accelerate launch` with
    # several processes only the main one scores, the others exit.
    import torch
    from accelerate import PartialState

    # On a machine without CUDA, cpu=True is what lets `accelerate launch --multi_gpu` processes join one
    # gloo group (DDP on the CPU); without it each process would train alone.
    run_dir = resolve_run_dir(run)
    state = PartialState(cpu=not torch.cuda.is_available())
    if not state.is_main_process:
        return None
    out_dir = eval_dir(run_dir, output_dir)
    with run_lock(run_dir, "make evaluate"):  # a training of the same run would change what is scored
        migrate_phase_dirs(run_dir)  # a run folder of older code is scored under today's folder names
        results = run_evaluation(run_dir, output_dir=out_dir, device=str(state.device), **options)
    return out_dir, results
