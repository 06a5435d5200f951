"""Train one phase: its data, loss and Trainer, then save a complete sentence-transformers folder.

Every phase goes through ``train_phase``; they differ only in ``PHASES`` and the recipe.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core.io import fmt, sha256_file
from medenc.core.layout import INFERENCE_MAX_SEQ_LENGTH, LOGS_DIR, LOSS_HISTORY, WEIGHTS_FILE, phase_dir
from medenc.training.checkpoints import last_complete_checkpoint
from medenc.training.data import Loader, PhaseData, mining_sources, split_sets
from medenc.training.mining import mined_sets, phase3_sets
from medenc.training.phases import PHASES
from medenc.training.recipe import Recipe
from medenc.training.trainer import (
    REPLAY,
    build_trainer,
    close_logs,
    load_model,
    make_evaluator,
    make_loss,
)

log = logging.getLogger("medenc.training")

CHECKPOINTS_DIR = "checkpoints"


@dataclass
class RunContext:
    """What every phase of one run shares."""

    recipe: Recipe
    run_dir: Path
    loader: Loader
    precision: str
    cuda: bool
    state: Any  # accelerate.PartialState
    mine_train: Any = None  # the phase-2 pairs phase 3 mines over, or None when it does not mine
    replay: dict[int, Any] = field(default_factory=dict)  # phase -> its replayed graded pairs (replay_graded)

    def checkpoints(self, n: int) -> Path:
        """Phase ``n``'s Trainer checkpoints (and phase 3's mined-triplet cache)."""
        return self.run_dir / CHECKPOINTS_DIR / f"phase-{n}"

    def logs(self, n: int) -> Path:
        """Phase ``n``'s TensorBoard logs (with ``report_to: tensorboard``)."""
        return self.run_dir / LOGS_DIR / f"phase-{n}"


def model_sha(folder: Path) -> str | None:
    """sha256 of a model folder's weights, or None when it has none."""
    weights = folder / WEIGHTS_FILE
    return sha256_file(weights) if weights.is_file() else None


def loss_history(log_history: list[dict]) -> list[dict]:
    """The Trainer's log reduced to (step, epoch, loss | eval_loss) entries."""
    out = []
    for entry in log_history:
        for key in ("loss", "eval_loss"):
            if key in entry:
                out.append({"step": entry.get("step"), "epoch": entry.get("epoch"), key: entry[key]})
    return out


def _phase_sets(ctx: RunContext, n: int, model, pd: PhaseData | None, rec: dict[str, Any]):
    """(train, validation or None, rows per source) of phase ``n``; phase 3 mines first if it must."""
    if n == 3:
        mined = None
        if ctx.mine_train is not None:
            t0 = time.perf_counter()
            mined = mined_sets(
                ctx.recipe, model, ctx.mine_train, ctx.loader, ctx.state, ctx.checkpoints(3) / "mined"
            )
            rec["mining_seconds"] = round(time.perf_counter() - t0, 1)
            rec["mined_from"] = sorted(mining_sources(ctx.recipe))  # the card credits these sources
        train, val, rows = phase3_sets(ctx.recipe, model, pd, mined, rec)
    else:
        assert pd is not None  # enabled phases 1-2 always have sources (recipe validation)
        train, val, rows = pd.train, pd.validation, pd.rows
    return train, (val if val is not None and len(val) else None), rows


def _multi_dataset(ctx: RunContext, n: int, train, rows: dict[str, int], rec: dict[str, Any]):
    """With ``phaseN.multi_dataset``: one set per source (phase 3: curated and mined) plus the replay set."""
    if ctx.recipe.phase(n).multi_dataset is None:
        return train
    # The mixed set is the sources' (phase 3: curated then mined) rows one block after another.
    blocks = {"curated": rec["negatives"]["curated"], "mined": rec["negatives"]["mined"]} if n == 3 else rows
    sets = split_sets(train, blocks)
    replay = ctx.replay.get(n)
    if replay is not None:
        sets[REPLAY] = replay
        rec["replay"] = len(replay)
    rec["datasets"] = {name: len(ds) for name, ds in sets.items()}
    mode = ctx.recipe.phase(n).multi_dataset
    log.info("phase %d: %s multi-dataset batches, each from one of %s", n, mode, rec["datasets"])
    return sets


def _epoch(train, cfg, world: int) -> tuple[int, int]:
    """(training rows, batches per epoch) of one set, or of a dict of sets as multi-dataset draws them."""
    if not isinstance(train, dict):
        return len(train), math.ceil(len(train) / (cfg.batch_size * world))
    per_set = [math.ceil(len(ds) / (cfg.batch_size * world)) for ds in train.values()]
    # round_robin stops when the smallest set runs out; proportional draws every batch of every set.
    batches = min(per_set) * len(per_set) if cfg.multi_dataset == "round_robin" else sum(per_set)
    return sum(len(ds) for ds in train.values()), batches


def _describe(ctx: RunContext, n: int, loss, train, val, rows, previous: Path | None, resume) -> dict:
    """The phase's plan as run.json records it, logged before training starts."""
    cfg, world = ctx.recipe.phase(n), ctx.state.num_processes
    train_rows, steps_per_epoch = _epoch(train, cfg, world)
    plan = {
        "loss": type(loss).__name__,
        "rows": rows,
        "train_rows": train_rows,
        "validation_rows": len(val) if val is not None else 0,
        "epochs": cfg.epochs,
        "steps": cfg.max_steps or math.ceil(steps_per_epoch * cfg.epochs),
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "warmup_ratio": cfg.warmup_ratio,
        "max_seq_length": ctx.recipe.seq_len(n),
        "started_from": str(previous.name) if previous else (ctx.recipe.init_from or ctx.recipe.model),
    }
    log.info(
        "phase %d (%s, %s): %d train rows %s, %d validation rows, %d steps (batch %d x %d process(es), "
        "%s epoch(s)), max_seq_length %d, precision %s%s",
        n, PHASES[n].name, plan["loss"], train_rows, rows, plan["validation_rows"], plan["steps"],
        cfg.batch_size, world, cfg.epochs, plan["max_seq_length"], ctx.precision,
        f", resuming from {resume}" if resume else "",
    )  # fmt: skip
    return plan


def _fit(trainer, resume: str | None, has_val: bool) -> dict[str, Any]:
    """Train (resuming from ``resume``), evaluate once more, and return the figures run.json keeps."""
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0
    # With several processes and a validation set smaller than one global batch, the Trainer reports the
    # evaluator's figures but no eval_loss: None then, not a crash at the end of a finished phase.
    eval_loss = (trainer.evaluate() if has_val else {}).get("eval_loss")
    train_losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    samples = result.metrics.get("train_samples_per_second")
    return {
        "steps": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "samples_per_second": round(samples, 2) if samples else None,
        "final_train_loss": train_losses[-1] if train_losses else result.metrics.get("train_loss"),
        "final_eval_loss": eval_loss,
    }


def _save(ctx: RunContext, n: int, trainer) -> str | None:
    """Write the phase folder atomically (beside it, then rename); returns its weights' sha256."""
    folder = phase_dir(ctx.run_dir, n)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # Training lengths are a speed choice; the saved folder carries the length users encode at.
    trainer.model.max_seq_length = INFERENCE_MAX_SEQ_LENGTH
    trainer.model.save(str(tmp))
    history = loss_history(trainer.state.log_history)
    (tmp / LOSS_HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    # The phase is safe in its folder now; its checkpoints only cost disk.
    for child in ctx.checkpoints(n).glob("checkpoint-*"):
        shutil.rmtree(child, ignore_errors=True)
    return model_sha(folder)


def train_phase(
    ctx: RunContext,
    n: int,
    *,
    previous: Path | None,
    data: PhaseData | None,
    rec: dict[str, Any],
    callbacks: list | None = None,
) -> None:
    """Train phase ``n`` from ``previous`` (None: the recipe's model), save its folder, fill ``rec``."""
    model = load_model(ctx.recipe, previous, ctx.recipe.seq_len(n))
    train, val, rows = _phase_sets(ctx, n, model, data, rec)
    train = _multi_dataset(ctx, n, train, rows, rec)
    ckpt_dir = ctx.checkpoints(n)
    # The main process sets incomplete checkpoints aside first; the others then see the same newest one.
    with ctx.state.main_process_first():
        resume = last_complete_checkpoint(ckpt_dir)
        if ctx.state.is_main_process and not resume:
            # A phase trained anew (an upstream phase retrained) must not show an earlier attempt's curves.
            shutil.rmtree(ctx.logs(n), ignore_errors=True)
    loss = make_loss(ctx.recipe, n, model, ctx.state.num_processes)
    rec.update(_describe(ctx, n, loss, train, val, rows, previous, resume))
    trainer = build_trainer(
        ctx.recipe, n, model, train, val,
        precision=ctx.precision, cuda=ctx.cuda, output_dir=ckpt_dir, num_processes=ctx.state.num_processes,
        callbacks=callbacks or [], loss=loss, run_name=f"{ctx.run_dir.name}-phase-{n}",
        evaluator=make_evaluator(ctx.recipe, n, val), logging_dir=ctx.logs(n),
    )  # fmt: skip
    rec.update(_fit(trainer, resume, val is not None))
    close_logs(trainer)
    if resume:
        rec["resumed_from"] = Path(resume).name
    if ctx.state.is_main_process:
        rec["model_sha256"] = _save(ctx, n, trainer)
    ctx.state.wait_for_everyone()
    log.info(
        "phase %d (%s) done in %.1f s, %s samples/s, train loss %s, eval loss %s -> %s",
        n, PHASES[n].name, rec["seconds"], rec["samples_per_second"],
        fmt(rec["final_train_loss"], missing="n/a"), fmt(rec["final_eval_loss"], missing="n/a"),
        phase_dir(ctx.run_dir, n),
    )  # fmt: skip
