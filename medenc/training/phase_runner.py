"""Train one phase: its data, loss and Trainer, then save a complete sentence-transformers folder.

Every phase goes through ``train_phase``; they differ only in their data set (``phase_specs.PHASES``) and the
recipe (the loss by name from ``losses.LOSSES``, the Trainer's arguments).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core.io import fmt, sha256_file, write_json
from medenc.core.layout import (
    INFERENCE_MAX_SEQ_LENGTH,
    LOGS_DIR,
    LOSS_HISTORY,
    PHASE_DIRS,
    TRIPLETS,
    WEIGHTS_FILE,
    phase_dir,
)
from medenc.core.model_id import model_hash
from medenc.core.modeling import save_model
from medenc.core.runs import PhaseFit, PhasePlan, PhaseRecord
from medenc.training.checkpoints import last_complete_checkpoint
from medenc.training.data import Loader, PhaseData, mining_sources, split_sets
from medenc.training.mining import mined_sets, triplet_sets
from medenc.training.phase_specs import PHASES
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
    near_misses: dict[str, Any] = field(default_factory=dict)  # phase 2's triplets: source -> dataset

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


@dataclass
class PhaseSets:
    """A phase's training rows as it trains on them, and what choosing them measured."""

    train: Any  # one dataset, or name -> dataset with ``multi_dataset``
    validation: Any  # None without validation rows
    rows: dict[str, int]  # training rows per source (triplets: and "mined")
    negatives: dict[str, int] | None = None  # triplets: {"mined": n, "curated": n}, mined after curated
    mining_seconds: float | None = None
    mined_from: list[str] | None = None
    replay: int | None = None
    datasets: dict[str, int] | None = None


def _phase_sets(ctx: RunContext, n: int, model, pd: PhaseData | None) -> PhaseSets:
    """Phase ``n``'s sets; triplets are curated and/or mined with the previous phase's model first."""
    if PHASES[n].data_set != TRIPLETS:
        assert pd is not None  # enabled phases without mining always have sources (recipe validation)
        return PhaseSets(pd.train, pd.validation if len(pd.validation) else None, pd.rows)
    mined, seconds, sources = None, None, None
    if ctx.mine_train is not None:
        t0 = time.perf_counter()
        mined = mined_sets(
            ctx.recipe, model, ctx.mine_train, ctx.loader, ctx.state, ctx.checkpoints(n) / "mined"
        )
        seconds = round(time.perf_counter() - t0, 1)
        sources = sorted(mining_sources(ctx.recipe))  # the card credits these sources
    train, val, rows, negatives = triplet_sets(ctx.recipe, pd, mined)
    val = val if val is not None and len(val) else None
    return PhaseSets(train, val, rows, negatives, mining_seconds=seconds, mined_from=sources)


def _multi_dataset(ctx: RunContext, n: int, sets: PhaseSets) -> PhaseSets:
    """With ``phaseN.multi_dataset``: one set per source (triplets: curated and mined) plus the replay set."""
    mode = ctx.recipe.phase(n).multi_dataset
    if mode is None:
        return sets
    # The mixed set is the sources' (triplets: curated then mined) rows one block after another.
    blocks = (
        {"curated": sets.negatives["curated"], "mined": sets.negatives["mined"]}
        if sets.negatives
        else sets.rows
    )
    train = split_sets(sets.train, blocks)
    rows = dict(sets.rows)
    if n == 2:  # near misses: each source's triplets a dataset of their own, rows credited to the source
        train.update(ctx.near_misses)
        rows.update({name: len(ds) for name, ds in ctx.near_misses.items()})
    replay = ctx.replay.get(n)
    if replay is not None:
        train[REPLAY] = replay
    datasets = {name: len(ds) for name, ds in train.items()}
    log.info("phase %d: %s multi-dataset batches, each from one of %s", n, mode, datasets)
    return dataclasses.replace(
        sets, train=train, rows=rows, replay=len(replay) if replay is not None else None, datasets=datasets
    )


def _describe(
    ctx: RunContext, n: int, trainer, loss, sets: PhaseSets, previous: Path | None, resume
) -> PhasePlan:
    """The phase's plan as run.json records it, logged before training starts."""
    cfg, world = ctx.recipe.phase(n), ctx.state.num_processes
    train, val = sets.train, sets.validation
    train_rows = sum(len(ds) for ds in train.values()) if isinstance(train, dict) else len(train)
    # The Trainer's own batches per epoch and process (a multi-dataset sampler's too), as it counts steps.
    per_epoch = max(len(trainer.get_train_dataloader()) // trainer.args.gradient_accumulation_steps, 1)
    max_steps = trainer.args.max_steps
    plan = PhasePlan(
        loss=type(loss).__name__,
        rows=sets.rows,
        train_rows=train_rows,
        validation_rows=len(val) if val is not None else 0,
        epochs=cfg.epochs,
        steps=max_steps if max_steps > 0 else math.ceil(per_epoch * cfg.epochs),
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_ratio=cfg.warmup_ratio,
        max_seq_length=ctx.recipe.seq_len(n),
        started_from=str(previous.name) if previous else (ctx.recipe.init_from or ctx.recipe.model),
    )
    log.info(
        "phase %d (%s, %s): %d train rows %s, %d validation rows, %d steps (batch %d x %d process(es), "
        "%s epoch(s)), max_seq_length %d, precision %s%s",
        n, PHASES[n].name, plan.loss, train_rows, sets.rows, plan.validation_rows, plan.steps,
        cfg.batch_size, world, cfg.epochs, plan.max_seq_length, ctx.precision,
        f", resuming from {resume}" if resume else "",
    )  # fmt: skip
    return plan


def _fit(trainer, resume: str | None, has_val: bool) -> PhaseFit:
    """Train (resuming from ``resume``), evaluate once more, and return the figures run.json keeps."""
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0
    # With several processes and a validation set smaller than one global batch, the Trainer reports the
    # evaluator's figures but no eval_loss: None then, not a crash at the end of a finished phase.
    eval_loss = (trainer.evaluate() if has_val else {}).get("eval_loss")
    train_losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    samples = result.metrics.get("train_samples_per_second")
    return PhaseFit(
        steps=trainer.state.global_step,
        seconds=round(seconds, 1),
        samples_per_second=round(samples, 2) if samples else None,
        final_train_loss=train_losses[-1] if train_losses else result.metrics.get("train_loss"),
        final_eval_loss=eval_loss,
    )


# Beside a phase's checkpoints: its fit figures, written once it trained to its last step and before its
# folder is saved. A kill in between leaves that step's checkpoint; resumed from it the Trainer trains nothing
# more (the weights are right) but measures nothing either, or counts a step it never took: the figures
# recorded when it did train are the phase's.
FIT_RECORD = "fit.json"


def _keep_fit(ctx: RunContext, n: int, fit: PhaseFit) -> None:
    """Record ``fit`` for the checkpoint of its last step (main process)."""
    if ctx.state.is_main_process:
        record = {"checkpoint": f"checkpoint-{fit.steps}", "fit": dataclasses.asdict(fit)}
        ctx.checkpoints(n).mkdir(parents=True, exist_ok=True)
        write_json(ctx.checkpoints(n) / FIT_RECORD, record)


def _kept_fit(ctx: RunContext, n: int, resume: str | None) -> PhaseFit | None:
    """The fit recorded when the phase trained to the checkpoint it resumes from, if it did; else None."""
    path = ctx.checkpoints(n) / FIT_RECORD
    if resume is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("checkpoint") == Path(resume).name:
            return PhaseFit(**record["fit"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("%s is unreadable (%s): the resumed phase records its own figures", path, exc)
    return None


def write_model_folder(model, folder: Path, history: list[dict] | None = None) -> None:
    """Save ``model`` as a complete sentence-transformers folder atomically (beside it, then rename), at
    the length users encode at; ``history`` becomes its loss_history.json."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    # Training lengths are a speed choice; the saved folder carries the length users encode at.
    model.max_seq_length = INFERENCE_MAX_SEQ_LENGTH
    save_model(model, tmp)
    if history is not None:
        (tmp / LOSS_HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def _save(ctx: RunContext, n: int, trainer) -> str | None:
    """Write the phase folder; returns its weights' sha256."""
    folder = phase_dir(ctx.run_dir, n)
    write_model_folder(trainer.model, folder, loss_history(trainer.state.log_history))
    # The phase is safe in its folder now; its checkpoints only cost disk.
    for child in ctx.checkpoints(n).glob("checkpoint-*"):
        shutil.rmtree(child, ignore_errors=True)
    (ctx.checkpoints(n) / FIT_RECORD).unlink(missing_ok=True)
    return model_sha(folder)


def train_phase(
    ctx: RunContext,
    n: int,
    *,
    previous: Path | None,
    data: PhaseData | None,
    callbacks: list | None = None,
) -> PhaseRecord:
    """Train phase ``n`` from ``previous`` (None: the recipe's model), save its folder; returns its record."""
    model = load_model(ctx.recipe, previous, ctx.recipe.seq_len(n))
    sets = _multi_dataset(ctx, n, _phase_sets(ctx, n, model, data))
    ckpt_dir = ctx.checkpoints(n)
    # The main process sets incomplete checkpoints aside first; the others then see the same newest one.
    with ctx.state.main_process_first():
        resume = last_complete_checkpoint(ckpt_dir)
        if ctx.state.is_main_process and not resume:
            # A phase trained anew (an upstream phase retrained) must not show an earlier attempt's curves,
            # nor keep its figures.
            shutil.rmtree(ctx.logs(n), ignore_errors=True)
            (ckpt_dir / FIT_RECORD).unlink(missing_ok=True)
    loss = make_loss(ctx.recipe, n, model, ctx.state.num_processes)
    trainer = build_trainer(
        ctx.recipe, n, model, sets.train, sets.validation,
        precision=ctx.precision, cuda=ctx.cuda, output_dir=ckpt_dir, num_processes=ctx.state.num_processes,
        callbacks=callbacks or [], loss=loss, run_name=f"{ctx.run_dir.name}-phase-{n}",
        evaluator=make_evaluator(ctx.recipe, n, sets.validation), logging_dir=ctx.logs(n),
    )  # fmt: skip
    plan = _describe(ctx, n, trainer, loss, sets, previous, resume)
    fit = _fit(trainer, resume, sets.validation is not None)
    fit = _kept_fit(ctx, n, resume) or fit  # resumed from its last step: the figures of when it trained
    _keep_fit(ctx, n, fit)
    close_logs(trainer)
    sha = _save(ctx, n, trainer) if ctx.state.is_main_process else None
    folder_hash = model_hash(phase_dir(ctx.run_dir, n)) if sha else None
    ctx.state.wait_for_everyone()
    log.info(
        "phase %d (%s) done in %.1f s, %s samples/s, train loss %s, eval loss %s -> %s",
        n, PHASES[n].name, fit.seconds, fit.samples_per_second,
        fmt(fit.final_train_loss, missing="n/a"), fmt(fit.final_eval_loss, missing="n/a"),
        phase_dir(ctx.run_dir, n),
    )  # fmt: skip
    return PhaseRecord(
        n, PHASES[n].name, PHASE_DIRS[n], "done", mining_seconds=sets.mining_seconds,
        mined_from=sets.mined_from, negatives=sets.negatives, replay=sets.replay, datasets=sets.datasets,
        plan=plan, fit=fit, resumed_from=Path(resume).name if resume else None, model_sha256=sha,
        model_hash=folder_hash,
    )  # fmt: skip
