"""Fine-tune all-mpnet-base-v2 in up to three phases, one code path for all of them (``make train``).

Phases differ only in their data set (``medenc.training.phase_specs``) and the recipe, which names each
phase's loss (``medenc.training.losses``: any loss that takes the phase's data set):

1. graded pairs (STS-B), e.g. with CosineSimilarityLoss / CoSENTLoss,
2. (anchor, positive) pairs, e.g. with MultipleNegativesRankingLoss (in-batch negatives, no duplicates per
   batch),
3. (anchor, positive, negative) triplets, e.g. with TripletLoss or MNRL; negatives mined with the phase-2
   model and/or curated.

This module owns the run: its folder, resuming, and its record (``run.json``, a ``RunRecord``);
``medenc.training.phase_runner`` trains one phase.
Phase N starts from phase N-1's saved folder. Every phase writes a complete sentence-transformers folder and
``run.json`` is rewritten after each step, so a killed run leaves a consistent record and a rerun skips
finished phases and resumes the unfinished one from its last Trainer checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from medenc.core.base_model import BASE_MODEL_ID, BASE_MODEL_REVISION, resolve_base_model, weights_variant
from medenc.core.environment import code_version, hardware, versions
from medenc.core.errors import DataError, RunError
from medenc.core.io import fmt, utc_now
from medenc.core.layout import (
    AVERAGED_DIR,
    FINAL_DIR,
    PAIRS,
    PHASE_DIRS,
    RUN_RECIPE,
    RUN_RECORD,
    WEIGHTS_FILE,
    phase_dir,
)
from medenc.core.lock import run_lock
from medenc.core.model_id import model_hash
from medenc.core.modeling import RANDOM_SHAPES
from medenc.core.paths import PROJECT_ROOT, run_folder
from medenc.core.runs import (
    RUN_SCHEMA_VERSION,
    PhaseRecord,
    RunRecord,
    migrate_phase_dirs,
    read_run_record,
    write_run_record,
)
from medenc.training.averaging import choose_weight
from medenc.training.data import (
    Loader,
    PhaseData,
    default_loader,
    mining_pairs,
    near_miss_sets,
    prepare_phase_data,
    replay_pairs,
)
from medenc.training.phase_runner import (
    CHECKPOINTS_DIR,
    RunContext,
    model_sha,
    train_phase,
    write_model_folder,
)
from medenc.training.phase_specs import PHASES
from medenc.training.precision import decide_precision, requested_precision, tell_accelerate
from medenc.training.recipe import AverageConfig, Recipe, load_recipe, recipe_sha256, to_yaml
from medenc.training.trainer import load_model

log = logging.getLogger("medenc.training")


def _phase_done(run_dir: Path, entry: PhaseRecord) -> bool:
    """Whether an earlier attempt finished this phase and its folder is still whole."""
    if not entry.done:
        return False
    folder = run_dir / entry.dir
    return (folder / WEIGHTS_FILE).is_file() and (folder / "modules.json").is_file()


# --- The run --------------------------------------------------------------------------------------------


def check_run_folder(
    run_dir: Path, recipe: Recipe, data_hash: str | None, fresh: bool, retrain_from: int | None = None
) -> None:
    """Refuse a run folder holding a different run (recipe or data changed) unless ``fresh`` wipes it.

    With ``retrain_from=N`` the recipe may differ in phases N and later only: those are retrained.
    """
    if not run_dir.exists() and not run_dir.is_symlink():
        return
    if fresh and run_dir.is_symlink():
        raise RunError(
            f"{run_dir}: is a symbolic link, and --fresh never removes through a link; remove the link "
            "(and what it points to) yourself, or choose another --run"
        )
    if not run_dir.is_dir() or not _is_run(run_dir):
        raise RunError(f"{run_dir}: {_not_a_run(run_dir)}; move it away yourself, or choose another --run")
    if fresh:
        log.info("--fresh: removing %s", run_dir)
        shutil.rmtree(run_dir)
        return
    saved = run_dir / RUN_RECIPE
    if not saved.is_file():
        return  # empty: nothing to compare
    # Compared as parsed recipes, not as texts: a key added later with a default that keeps the old behaviour
    # (say phaseN.attention) must not make every earlier run folder look like a different recipe.
    old_recipe = load_recipe(saved, [])
    old = recipe_sha256(_trained(old_recipe), retrain_from)
    new = recipe_sha256(_trained(recipe), retrain_from)
    if old != new and retrain_from is not None:
        raise RunError(
            f"{run_dir}: --retrain-from {retrain_from} keeps phases before {retrain_from}, but the recipe "
            f"differs from {saved} outside phases {retrain_from} and later; retrain from an earlier phase, "
            "pass --fresh, or choose another --run"
        )
    if old != new:
        raise RunError(
            f"{run_dir}: holds a run of a different recipe (sha256 {old[:12]}, this recipe {new[:12]}); "
            f"compare with {saved}. Pass --fresh to wipe the folder and start over, --retrain-from N to keep "
            "the finished phases before N (when only phases N and later changed), or choose another --run"
        )
    record = read_run_record(run_dir, required=False)  # refuses a corrupt record or one of another schema
    if record is not None and data_hash is not None:
        old_data = record.data_manifest_sha256
        if old_data is not None and old_data != data_hash:
            raise RunError(
                f"{run_dir}: was trained on different prepared data (manifest sha256 {old_data[:12]}, now "
                f"{data_hash[:12]}). Pass --fresh to start over, or choose another --run"
            )


def _trained(recipe: Recipe) -> Recipe:
    """The recipe without its weight averaging: averaging is redone at every finish from the phases as they
    are, so a changed `average` keeps every trained phase."""
    return recipe.model_copy(update={"average": AverageConfig()})


def _is_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` (a real folder) is a run, which ``--fresh`` may remove: empty, or holding this
    project's run.json (a run record of any schema version, or an unreadable one beside recipe.yaml, which
    the rebuild advice of medenc.core.runs sends to ``--fresh``)."""
    if not any(run_dir.iterdir()):
        return True
    record = run_dir / RUN_RECORD
    if record.is_symlink() or not record.is_file():
        return False
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (run_dir / RUN_RECIPE).is_file() and not (run_dir / RUN_RECIPE).is_symlink()
    return isinstance(data, dict) and "schema_version" in data and "run" in data


def _not_a_run(run_dir: Path) -> str:
    """Why ``run_dir`` is refused as a run folder (training would write it, --fresh remove it)."""
    if not run_dir.is_dir():
        return "is not a folder" + (" (a link to nothing)" if run_dir.is_symlink() else "")
    return f"holds files but no {RUN_RECORD} of this project, so it is not a run folder and is left alone"


def _default_data_hash() -> str | None:
    from medenc.data import manifest_hash

    return manifest_hash()


def _precision(recipe: Recipe, cuda: bool) -> dict[str, str]:
    """The precision decision (requested, used, reason), logged where it differs from the request."""
    requested = requested_precision(recipe.precision)
    used, reason = decide_precision(requested, cuda)
    # accelerate launch exports its config's mixed precision, which the Trainer would otherwise pick up even
    # where it cannot run (fp16 on a CPU): the decision above is the one that counts.
    tell_accelerate(used)
    if requested != used:
        log.warning("precision: %s requested, training in %s: %s", requested, used, reason)
    return {"requested": requested, "used": used, "reason": reason}


def _load_data(recipe: Recipe, loader: Loader) -> tuple[dict[int, PhaseData | None], Any, dict[int, Any]]:
    """Every enabled phase's sets, the pairs phase 3 mines over and the replayed graded pairs of phases 2-3
    (phase 2's near-miss triplets are loaded beside them): all checked before any training."""
    data = {n: prepare_phase_data(recipe, n, loader) for n in (1, 2, 3) if recipe.phase(n).enabled}
    mine = recipe.phase3.enabled and recipe.phase3.mines_negatives()
    mine_train = mining_pairs(recipe, loader, "train", None) if mine else None
    if mine_train is not None and len(mine_train) == 0:
        raise DataError(f"prepared train/{PAIRS}", "phase 3 mining", "at least one pair", "none")
    replay = {n: ds for n in (2, 3) if (ds := replay_pairs(recipe, n, loader)) is not None}
    return data, mine_train, replay


def _shareable(path: str | Path) -> str:
    """A path as run.json records it: relative to the project inside it, else the last part alone. run.json
    is released and published; a local cache path (a home folder, a user name) belongs to no one else."""
    path = Path(path)
    try:
        return path.resolve().relative_to(PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        return path.name if path.is_absolute() else path.as_posix()


def _base_record(recipe: Recipe, base_path: Path | None) -> dict[str, Any]:
    """run.json's ``base_model``: the verified base as this attempt used it, or a random-weight shape."""
    if base_path is None:
        shape = RANDOM_SHAPES[recipe.model]
        return {
            "id": f"random-weight MPNet, {shape} shape (tests and timing; not a model)",
            "revision": None,
            "path": None,
            "sha256": None,
        }
    sha = model_sha(base_path)
    return {
        "id": BASE_MODEL_ID,
        "revision": BASE_MODEL_REVISION,
        "path": _shareable(base_path),
        # Hashed again on every attempt: a repaired cache must not keep the damaged file's hash here.
        "sha256": sha,
        # The fp16-rounded copy that travels to a GPU machine says so (variant, the original's sha256).
        **weights_variant(sha),
    }


def _phase_records(recipe: Recipe, old: RunRecord | None) -> list[PhaseRecord]:
    """One run.json entry per phase: kept from an earlier attempt, else pending (or skipped if disabled)."""
    old_phases = {p.phase: p for p in (old.phases if old else [])}
    phases = []
    for n in (1, 2, 3):
        entry = old_phases.get(n) or PhaseRecord(n, PHASES[n].name, PHASE_DIRS[n])
        if not recipe.phase(n).enabled:
            entry = PhaseRecord(n, PHASES[n].name, PHASE_DIRS[n], "skipped")
        phases.append(entry)
    return phases


def _start_record(recipe: Recipe, run: str, run_dir: Path, **fields: Any) -> RunRecord:
    """The record at the start of an attempt: an earlier attempt's record updated with this one's facts."""
    old = read_run_record(run_dir, required=False)
    recipe_path = fields.pop("recipe_path")
    return RunRecord(
        schema_version=RUN_SCHEMA_VERSION,
        code_version=code_version(),
        run=run,
        recipe_path=_shareable(recipe_path) if recipe_path else None,
        recipe_sha256=recipe_sha256(recipe),
        base_model=_base_record(recipe, fields.pop("base_path")),
        data_manifest_sha256=fields.pop("data_hash"),
        precision=fields.pop("precision"),
        hardware=hardware(fields.pop("device"), fields.pop("num_processes")),
        versions=versions(),
        started=(old.started if old else None) or utc_now(),
        finished=None,
        phases=_phase_records(recipe, old),
        total_seconds=old.total_seconds if old else None,
        final=old.final if old else None,
    )


def _save(ctx: RunContext, record: RunRecord) -> None:
    """run.json, written atomically by the main process after every step."""
    if ctx.state.is_main_process:
        write_run_record(ctx.run_dir, record)


def _train_phases(
    ctx: RunContext, record: RunRecord, data: dict, callbacks: dict[int, list], retrain_from: int | None
) -> None:
    """Train every enabled phase not done yet; a retrained phase retrains every later one too."""
    previous: Path | None = None
    upstream_retrained = False
    for n in (1, 2, 3):
        entry = record.phase(n)
        if not ctx.recipe.phase(n).enabled:
            log.info("phase %d (%s): disabled in the recipe", n, PHASES[n].name)
            continue
        folder = phase_dir(ctx.run_dir, n)
        if retrain_from is not None and n >= retrain_from and not upstream_retrained:
            # An earlier attempt's checkpoints and mined triplets follow the old recipe or old weights, in
            # this phase and every later one (phase 3's negatives were mined with the old phase 2): never
            # resume them.
            if ctx.state.is_main_process:
                for m in range(n, 4):
                    shutil.rmtree(ctx.checkpoints(m), ignore_errors=True)
            ctx.state.wait_for_everyone()
            log.info("phase %d (%s): --retrain-from %d, trained anew", n, PHASES[n].name, retrain_from)
            upstream_retrained = True
        if not upstream_retrained and _phase_done(ctx.run_dir, entry):
            log.info("phase %d (%s): done in an earlier run, skipped (%s)", n, PHASES[n].name, folder)
            previous = folder
            continue
        upstream_retrained = True  # later phases must start from this phase's new weights
        # record.phases holds phases 1, 2, 3 in order (_phase_records).
        record.phases[n - 1] = PhaseRecord(n, PHASES[n].name, PHASE_DIRS[n], "running")
        _save(ctx, record)
        record.phases[n - 1] = train_phase(
            ctx, n, previous=previous, data=data.get(n), callbacks=callbacks.get(n, [])
        )
        _save(ctx, record)
        previous = folder


def _average(ctx: RunContext, record: RunRecord, last: Path) -> dict | None:
    """Average the last phase with the starting model (recipe key ``average``); returns run.json's
    ``final.average``, or None when the recipe does not average. An earlier finish's choice is kept when the
    phase, the candidates and the averaged folder are unchanged (a rerun after a kill costs nothing)."""
    averaged = ctx.run_dir / AVERAGED_DIR
    cfg = ctx.recipe.average
    if not cfg.enabled:
        shutil.rmtree(averaged, ignore_errors=True)  # a folder of an earlier recipe must not be scored
        return None
    old = (record.final or {}).get("average") or {}
    weights = sorted(set(cfg.weights) | {1.0})
    if (
        old.get("of_sha256") == model_sha(last)
        and [c["weight"] for c in old.get("candidates", [])] == weights
        and (old["weight"] == 1.0 or model_sha(averaged) == old.get("model_sha256"))
    ):
        log.info("averaging: the choice of an earlier finish stands (weight %s)", old["weight"])
        return old
    seq = ctx.recipe.max_seq_length
    start, tuned = load_model(ctx.recipe, None, seq), load_model(ctx.recipe, last, seq)
    choice = choose_weight(ctx.recipe, start, tuned, ctx.loader, ctx.precision, last.name)
    out = {**choice.as_record(), "of_sha256": model_sha(last)}
    if choice.weight < 1.0:
        write_model_folder(tuned, averaged)
        out["model_sha256"] = model_sha(averaged)
    else:
        shutil.rmtree(averaged, ignore_errors=True)
    log.info("averaging: weight %s of %s chosen on the validation split (%.0f s)", choice.weight,
             last.name, choice.seconds)  # fmt: skip
    return out


def _finish(ctx: RunContext, record: RunRecord) -> int:
    """``final/`` = a copy of the last enabled phase, or of its average with the starting model; checkpoints
    go. Returns that phase's number."""
    last = max(n for n in (1, 2, 3) if ctx.recipe.phase(n).enabled)
    if ctx.state.is_main_process:
        average = _average(ctx, record, phase_dir(ctx.run_dir, last))
        source = AVERAGED_DIR if average and average["weight"] < 1.0 else PHASE_DIRS[last]
        final = ctx.run_dir / FINAL_DIR
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(ctx.run_dir / source, final)
        record.final = {"from": source, "model_sha256": model_sha(final), "model_hash": model_hash(final)}
        if average is not None:
            record.final["average"] = average
        record.finished = utc_now()
        _save(ctx, record)
        shutil.rmtree(ctx.run_dir / CHECKPOINTS_DIR, ignore_errors=True)
    ctx.state.wait_for_everyone()
    return last


def _log_summary(record: RunRecord, run_dir: Path, last: int) -> None:
    for entry in record.phases:
        if not entry.done or entry.plan is None or entry.fit is None:
            log.info("summary: phase %d %-8s %s", entry.phase, entry.name, entry.status)
            continue
        fit = entry.fit
        log.info(
            "summary: phase %d %-8s %5s rows %4s steps %7.1f s %6.2f samples/s, loss %s, eval loss %s",
            entry.phase, entry.name, entry.plan.train_rows, fit.steps, fit.seconds or 0.0,
            fit.samples_per_second or 0.0, fmt(fit.final_train_loss, missing="n/a"),
            fmt(fit.final_eval_loss, missing="n/a"),
        )  # fmt: skip
    source = (record.final or {}).get("from", PHASE_DIRS[last])
    log.info("final model: %s (from %s)", run_dir / FINAL_DIR, source)


def run_training(
    recipe: Recipe,
    run: str,
    *,
    recipe_path: str | Path | None = None,
    output_dir: str | Path | None = None,
    fresh: bool = False,
    retrain_from: int | None = None,
    loader: Loader | None = None,
    data_hash: str | None = None,
    callbacks: dict[int, list] | None = None,
) -> RunRecord:
    """Train every enabled phase of ``recipe`` into ``<output_dir>/<run>/``; returns its record (run.json).

    ``retrain_from=N`` keeps the finished phases before N and trains N and later anew, for a recipe that
    changed only there. ``loader`` (default: the prepared data) and ``data_hash`` (default: the manifest's
    sha256) are injectable for tests, as are extra Trainer ``callbacks`` per phase number.
    """
    import torch
    from accelerate import PartialState

    run_dir = run_folder(run, output_dir)  # refuses a name that is not a plain folder name, first
    # On a machine without CUDA, cpu=True is what lets `accelerate launch --multi_gpu` processes join one
    # gloo group (DDP on the CPU); without it each process would train alone.
    state = PartialState(cpu=not torch.cuda.is_available())
    # Only the main process writes the folder, so only it holds the lock.
    with run_lock(run_dir, "make train") if state.is_main_process else contextlib.nullcontext():
        return _run(
            recipe, run_dir, state, recipe_path=recipe_path, fresh=fresh, retrain_from=retrain_from,
            loader=loader or default_loader, data_hash=data_hash, callbacks=callbacks or {},
        )  # fmt: skip


def _run(
    recipe: Recipe,
    run_dir: Path,
    state: Any,
    *,
    recipe_path: str | Path | None,
    fresh: bool,
    retrain_from: int | None,
    loader: Loader,
    data_hash: str | None,
    callbacks: dict[int, list],
) -> RunRecord:
    """run_training's body, under the run folder's lock."""
    import torch

    # 1. Everything that can be refused is refused before any training starts. Random weights need no base.
    base_path = resolve_base_model() if recipe.model == "base" else None
    data_hash = _default_data_hash() if data_hash is None else data_hash
    if state.is_main_process:
        check_run_folder(run_dir, recipe, data_hash, fresh, retrain_from)
        migrate_phase_dirs(run_dir)  # a run folder of older code resumes under today's folder names
    state.wait_for_everyone()
    cuda = torch.cuda.is_available()
    precision = _precision(recipe, cuda)
    data, mine_train, replay = _load_data(recipe, loader)

    # 2. The run folder and its records.
    record = _start_record(
        recipe, run_dir.name, run_dir, base_path=base_path, recipe_path=recipe_path, data_hash=data_hash,
        precision=precision, device="cuda" if cuda else "cpu", num_processes=state.num_processes,
    )  # fmt: skip
    recipe_text = to_yaml(recipe)
    ctx = RunContext(
        recipe, run_dir, loader, precision["used"], cuda, state, mine_train, replay,
        near_miss_sets(recipe, loader),
    )  # fmt: skip
    if state.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        _save(ctx, record)  # first: a folder holding run.json is a run (see _is_run), even if killed here
        (run_dir / RUN_RECIPE).write_text(recipe_text, encoding="utf-8")
    log.info("run %s -> %s\nresolved recipe:\n%s", run_dir.name, run_dir, recipe_text.rstrip())
    if precision["requested"] == precision["used"]:
        log.info("precision: %s (%s)", precision["used"], precision["reason"])

    # 3. The phases, then final/.
    _train_phases(ctx, record, data, callbacks, retrain_from)
    last = _finish(ctx, record)
    _log_summary(record, run_dir, last)
    return record
