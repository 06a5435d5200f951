"""Fine-tune all-mpnet-base-v2 in up to three phases, one code path for all of them.

Phases differ only in their data set, loss and arguments (``PHASES`` below plus the recipe):

1. graded pairs (STS-B) with CosineSimilarityLoss / CoSENTLoss,
2. (anchor, positive) pairs with MultipleNegativesRankingLoss (in-batch negatives, no duplicates per batch),
3. (anchor, positive, negative) triplets with TripletLoss; negatives mined with the phase-2 model
   and/or curated.

Phase N starts from phase N-1's saved folder. Every phase writes a complete sentence-transformers folder and
``run.json`` is rewritten after each step, so a killed run leaves a consistent record and a rerun skips
finished phases and resumes the unfinished one from its last Trainer checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medenc.base_model import BASE_MODEL_ID, BASE_MODEL_REVISION, resolve_base_model, sha256_file
from medenc.environment import hardware, versions
from medenc.errors import DataError, RecipeError, RunError
from medenc.layout import (
    COLUMNS,
    FINAL_DIR,
    GRADED_PAIRS,
    INFERENCE_MAX_SEQ_LENGTH,
    LOSS_HISTORY,
    PAIRS,
    PHASE_DIRS,
    RUN_INFO,
    RUN_RECIPE,
    TRIPLETS,
    phase_dir,
    training_seconds,
)
from medenc.modeling import RANDOM_SHAPES, use_sdpa_attention
from medenc.paths import PROJECT_ROOT, outputs_dir
from medenc.recipe import Recipe, load_recipe, recipe_sha256, to_yaml

log = logging.getLogger("medenc.train")

SCHEMA_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
MODEL_NAME = "MPNet-medical"

# (split, set name) -> Dataset; the default reads the prepared data (medenc.data); tests inject sets.
Loader = Callable[[str, str], Any]


@dataclass(frozen=True)
class PhaseSpec:
    """What distinguishes one phase from another, apart from the recipe's numbers."""

    number: int
    name: str
    data_set: str
    columns: tuple[str, ...]
    losses: dict[str, str]  # recipe loss name -> sentence-transformers loss class
    batch_sampler: str


PHASES: dict[int, PhaseSpec] = {
    1: PhaseSpec(
        1,
        "cosine",
        GRADED_PAIRS,
        COLUMNS[GRADED_PAIRS],
        {"cosine": "CosineSimilarityLoss", "cosent": "CoSENTLoss"},
        "batch_sampler",
    ),
    # In-batch negatives: a duplicate text in a batch would be a false negative, hence no_duplicates.
    2: PhaseSpec(
        2,
        "mnrl",
        PAIRS,
        COLUMNS[PAIRS],
        {"mnrl": "MultipleNegativesRankingLoss", "cached_mnrl": "CachedMultipleNegativesRankingLoss"},
        "no_duplicates",
    ),
    3: PhaseSpec(3, "triplet", TRIPLETS, COLUMNS[TRIPLETS], {"triplet": "TripletLoss"}, "batch_sampler"),
}


# --- Precision ------------------------------------------------------------------------------------------


def requested_precision(recipe_precision: str, env: dict[str, str] | None = None) -> str:
    """Resolve ``auto`` to accelerate's mixed precision (``accelerate launch``'s env, else its config)."""
    if recipe_precision != "auto":
        return recipe_precision
    env = os.environ if env is None else env
    mp = env.get("ACCELERATE_MIXED_PRECISION")
    if mp is None:
        config = PROJECT_ROOT / "accelerate_config.yaml"
        if config.is_file():
            import yaml

            mp = str((yaml.safe_load(config.read_text()) or {}).get("mixed_precision", "no"))
    return {"no": "fp32", "fp16": "fp16", "bf16": "bf16"}.get(mp or "no", "fp32")


def decide_precision(requested: str, cuda_available: bool, cpu_bf16: bool | None = None) -> tuple[str, str]:
    """The precision training really uses, and why; ``requested`` is fp32, fp16 or bf16 (not auto).

    ``cpu_bf16``: whether the CPU has native bf16 (default: read from /proc/cpuinfo). Without it bf16 autocast
    on a CPU is emulated and slower than fp32, so the honest choice is fp32.
    """
    if requested == "fp32":
        return "fp32", "the recipe asks for fp32"
    if requested == "fp16":
        if cuda_available:
            return "fp16", "fp16 mixed precision on CUDA"
        return (
            "fp32",
            "fp16 needs CUDA and this is a CPU: training in fp32 (set precision: bf16 for bf16 autocast)",
        )
    if requested == "bf16":
        if cuda_available:
            return "bf16", "bf16 mixed precision on CUDA"
        if cpu_bf16 is None:
            from medenc.environment import cpu_has_bf16

            cpu_bf16 = cpu_has_bf16()
        if cpu_bf16:
            return "bf16", "bf16 autocast on a CPU with native bf16 (avx512_bf16/amx_bf16)"
        return "fp32", "bf16 on this CPU would be emulated (no avx512_bf16/amx_bf16): training in fp32"
    raise RecipeError(f"precision: expected one of auto, fp32, fp16, bf16, found {requested!r}")


# --- Data -----------------------------------------------------------------------------------------------


def _default_loader(split: str, name: str):
    from medenc.data import load_split

    return load_split(split, name)


def _check_columns(ds, columns: tuple[str, ...], phase: int, split: str, set_name: str) -> None:
    for col in (*columns, "source"):
        if col not in ds.column_names:
            raise DataError(
                f"prepared {split}/{set_name}",
                f"phase {phase}",
                f"column '{col}' (needs {', '.join(columns)}, source)",
                f"columns {ds.column_names}",
            )


def select_sources(
    ds,
    sources: dict[str, int | None],
    columns: tuple[str, ...],
    *,
    phase: int,
    set_name: str,
    split: str,
    seed: int,
    required: bool = True,
    cap: int | None = None,
):
    """Rows of the named sources (each capped at its max rows), only ``columns``; returns (dataset, counts).

    ``required``: a named source without rows is a RecipeError (training); else it is skipped (validation).
    ``cap``: a random subset of at most this many rows overall.
    """
    _check_columns(ds, columns, phase, split, set_name)
    by_source: dict[str, list[int]] = {}
    for i, name in enumerate(ds["source"]):
        by_source.setdefault(name, []).append(i)
    rng = random.Random(seed)
    picked: list[int] = []
    counts: dict[str, int] = {}
    for name, max_rows in sources.items():
        idx = by_source.get(name, [])
        if not idx:
            if required:
                raise RecipeError(
                    f"phase{phase}.sources: source '{name}' has no rows in prepared {split}/{set_name} "
                    f"(sources there: {', '.join(sorted(by_source)) or 'none'})"
                )
            continue
        if max_rows is not None and len(idx) > max_rows:
            idx = sorted(rng.sample(idx, max_rows))
        picked.extend(idx)
        counts[name] = len(idx)
    if cap is not None and len(picked) > cap:
        picked = sorted(rng.sample(picked, cap))
        counts = {}
        for i in picked:
            counts[ds[i]["source"]] = counts.get(ds[i]["source"], 0) + 1
    # ST treats every non-label column as an input, so `source` (and anything else) must go.
    return ds.select(picked).select_columns(list(columns)), counts


@dataclass
class PhaseData:
    """The training and validation sets of a phase, before any mining."""

    train: Any
    validation: Any
    rows: dict[str, int]
    validation_rows: int


def prepare_phase_data(recipe: Recipe, n: int, loader: Loader) -> PhaseData | None:
    """Load and check phase ``n``'s sets; phase 3's mined part is added later (it needs the phase-2 model)."""
    spec, cfg = PHASES[n], recipe.phase(n)
    include = cfg.used_sources()
    if n == 3 and recipe.phase3.negatives == "mined":
        include = {}
    if not include:
        return None
    train, rows = select_sources(
        loader("train", spec.data_set),
        include,
        spec.columns,
        phase=n,
        set_name=spec.data_set,
        split="train",
        seed=recipe.seed,
    )
    if len(train) == 0:
        raise DataError(f"prepared train/{spec.data_set}", f"phase {n}", "at least one training row", "none")
    val, _ = select_sources(
        loader("validation", spec.data_set),
        include,
        spec.columns,
        phase=n,
        set_name=spec.data_set,
        split="validation",
        seed=recipe.seed,
        required=False,
        cap=cfg.validation_rows,
    )
    return PhaseData(train, val, rows, len(val))


def mining_pairs(recipe: Recipe, loader: Loader, split: str, cap: int | None):
    """The phase-2 pairs that phase 3 mines over (the same selection phase 2 trains on, for ``train``)."""
    cfg = recipe.phase2
    ds, _ = select_sources(
        loader(split, PAIRS),
        cfg.used_sources(),
        COLUMNS[PAIRS],
        phase=3,
        set_name=PAIRS,
        split=split,
        seed=recipe.seed,
        required=split == "train",
        cap=cap,
    )
    return ds


def mine_negatives(recipe: Recipe, model, pairs, anchors: int | None, verbose: bool):
    """(anchor, positive, negative) triplets mined with ``model``; corpus = all positives of ``pairs``."""
    from sentence_transformers import mine_hard_negatives

    m = recipe.phase3.mining
    corpus = list(dict.fromkeys(pairs["positive"]))
    queries = pairs
    if anchors is not None and len(pairs) > anchors:
        queries = pairs.select(sorted(random.Random(recipe.seed).sample(range(len(pairs)), anchors)))
    return mine_hard_negatives(
        queries,
        model,
        anchor_column_name="anchor",
        positive_column_name="positive",
        corpus=corpus,
        range_min=m.range_min,
        range_max=m.range_max,
        max_score=m.max_score,
        absolute_margin=m.absolute_margin,
        relative_margin=m.relative_margin,
        num_negatives=m.num_negatives,
        sampling_strategy=m.sampling,
        batch_size=m.batch_size,
        use_faiss=False,  # exact search: the corpus is small, and faiss is not a dependency
        output_format="triplet",
        verbose=verbose,
    ).select_columns(list(COLUMNS[TRIPLETS]))


# --- Models and losses ----------------------------------------------------------------------------------


def card_data():
    """Model card data that keeps the base model offline (the generator drops what it cannot verify)."""
    from sentence_transformers import SentenceTransformerModelCardData

    card = SentenceTransformerModelCardData(
        language="en", license="apache-2.0", model_name=MODEL_NAME, local_files_only=True
    )
    # init=False fields in the installed version: set after construction.
    card.base_model = BASE_MODEL_ID
    card.base_model_revision = BASE_MODEL_REVISION
    return card


def load_model(recipe: Recipe, source: Path | None, max_seq_length: int):
    """Phase N's starting model: the previous phase's folder, else the base (or a random-weight) model."""
    from sentence_transformers import SentenceTransformer

    card = card_data()
    source = source or (Path(recipe.init_from) if recipe.init_from else None)
    if source is not None:
        model = SentenceTransformer(str(source), model_card_data=card, device="cpu")
    elif recipe.model != "base":
        from medenc.modeling import build_random_model

        shape = RANDOM_SHAPES[recipe.model]
        model = build_random_model(shape, max_seq_length=max_seq_length, seed=recipe.seed, device="cpu")
        model.model_card_data = card
        card.register_model(model)
    else:
        model = SentenceTransformer(str(resolve_base_model()), model_card_data=card, device="cpu")
    # The Trainer moves the model to the right device; loading on CPU keeps every process identical.
    model.max_seq_length = max_seq_length
    return model


def make_loss(recipe: Recipe, n: int, model, num_processes: int):
    """The phase's loss, chosen by the recipe."""
    from sentence_transformers.sentence_transformer import losses

    cfg = recipe.phase(n)
    name = PHASES[n].losses[cfg.loss]
    if n == 1:
        return getattr(losses, name)(model)
    if n == 2:
        # With several processes, gather embeddings so every process sees all in-batch negatives.
        kwargs: dict[str, Any] = {"gather_across_devices": num_processes > 1}
        if cfg.loss == "cached_mnrl":
            kwargs["mini_batch_size"] = recipe.phase2.mini_batch_size
        return getattr(losses, name)(model, **kwargs)
    metric = {
        "cosine": losses.TripletDistanceMetric.COSINE,
        "euclidean": losses.TripletDistanceMetric.EUCLIDEAN,
    }[recipe.phase3.distance]
    return losses.TripletLoss(model, distance_metric=metric, triplet_margin=recipe.phase3.margin)


# --- Trainer (shared by training and the benchmark, medenc.bench) -------------------------------------


class LengthGroupedBatchSampler:
    """Batches of similar length (less padding), in random order; optionally without duplicate texts.

    Rows are shuffled, cut into mega-batches of ``MEGA`` batches, sorted by length (sum of the characters of
    the text columns) inside each mega-batch and then batched; the batch order is shuffled again. With
    ``no_duplicates`` the batches are filled greedily as ST's NoDuplicatesBatchSampler does (a row whose text
    is already in the batch waits for a later one), so MNRL keeps its no-false-negative guarantee.
    """

    MEGA = 16

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
        no_duplicates: bool = False,
    ) -> None:
        skip = set(valid_label_columns or []) | {"dataset_name"}
        cols = [c for c in dataset.column_names if c not in skip]
        values = [list(dataset[c]) for c in cols]
        self.lengths = [sum(len(str(v[i])) for v in values) for i in range(len(dataset))]
        self.texts = (
            [frozenset(str(v[i]) for v in values) for i in range(len(dataset))] if no_duplicates else None
        )
        self.batch_size, self.drop_last, self.seed, self.epoch = batch_size, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batches(self, order: list[int]) -> list[list[int]]:
        bs = self.batch_size
        if self.texts is None:
            return [order[i : i + bs] for i in range(0, len(order), bs)]
        batches, remaining = [], order
        while remaining:
            batch, seen, later = [], set(), []
            for i in remaining:
                if len(batch) == bs or not self.texts[i].isdisjoint(seen):
                    later.append(i)
                else:
                    batch.append(i)
                    seen |= self.texts[i]
            batches.append(batch)
            remaining = later
        return batches

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        perm = list(range(len(self.lengths)))
        rng.shuffle(perm)
        mega = self.batch_size * self.MEGA
        order = []
        for s in range(0, len(perm), mega):
            order.extend(sorted(perm[s : s + mega], key=self.lengths.__getitem__, reverse=True))
        batches = self._batches(order)
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        rng.shuffle(batches)
        yield from batches


def batch_sampler(n: int, group_by_length: bool):
    """The phase's batch sampler: ST's (no duplicates for in-batch negatives), or the length-grouped one."""
    import functools

    spec = PHASES[n]
    if not group_by_length:
        return spec.batch_sampler
    return functools.partial(LengthGroupedBatchSampler, no_duplicates=spec.batch_sampler == "no_duplicates")


def build_trainer(
    recipe: Recipe,
    n: int,
    model,
    train,
    val,
    *,
    precision: str,
    cuda: bool,
    output_dir: str | Path,
    num_processes: int,
    max_steps: int | None = None,
    callbacks=(),
    loss=None,
    run_name: str | None = None,
    save_checkpoints: bool = True,
):
    """The SentenceTransformerTrainer of phase ``n`` as the recipe says (loss from make_loss unless given).

    ``max_steps`` overrides the recipe's; ``save_checkpoints=False`` turns checkpoints off (benchmark).
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    cfg = recipe.phase(n)
    if cfg.attention == "sdpa":
        use_sdpa_attention(model)
    if loss is None:
        loss = make_loss(recipe, n, model, num_processes)
    workers = cfg.dataloader_workers
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=max_steps or cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=not cuda,
        eval_strategy="steps" if val is not None else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps" if save_checkpoints else "no",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        seed=recipe.seed,
        data_seed=recipe.seed,
        batch_sampler=batch_sampler(n, cfg.group_by_length),
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_pin_memory=cuda,
        torch_compile=cfg.torch_compile,
        report_to="none",
        run_name=run_name,
    )
    return SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        loss=loss,
        callbacks=list(callbacks) or None,
    )


# --- Run records ----------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, data: dict) -> None:
    # Write then rename, so a kill never leaves a half-written run.json.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _model_sha(folder: Path) -> str | None:
    weights = folder / "model.safetensors"
    return sha256_file(weights) if weights.is_file() else None


def _loss_history(log_history: list[dict]) -> list[dict]:
    out = []
    for entry in log_history:
        for key in ("loss", "eval_loss"):
            if key in entry:
                out.append({"step": entry.get("step"), "epoch": entry.get("epoch"), key: entry[key]})
    return out


def _phase_done(run_dir: Path, record: dict | None) -> bool:
    if not record or record.get("status") != "done":
        return False
    folder = run_dir / record.get("dir", "")
    return (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()


# --- The run --------------------------------------------------------------------------------------------


def check_run_folder(run_dir: Path, recipe: Recipe, data_hash: str | None, fresh: bool) -> None:
    """Refuse a run folder holding a different run (recipe or data changed) unless ``fresh`` wipes it."""
    if not run_dir.exists():
        return
    if fresh:
        log.info("--fresh: removing %s", run_dir)
        shutil.rmtree(run_dir)
        return
    saved = run_dir / RUN_RECIPE
    if not saved.is_file():
        if any(run_dir.iterdir()):
            raise RunError(
                f"{run_dir}: holds files but no {RUN_RECIPE}, so it is not a run of this recipe; "
                "pass --fresh to wipe it or choose another --run"
            )
        return
    # Compared as parsed recipes, not as texts: a key added later with a default that keeps the old behaviour
    # (say phaseN.attention) must not make every earlier run folder look like a different recipe.
    old = recipe_sha256(load_recipe(saved, []))
    new = recipe_sha256(recipe)
    if old != new:
        raise RunError(
            f"{run_dir}: holds a run of a different recipe (sha256 {old[:12]}, this recipe {new[:12]}); "
            f"compare with {saved}. Pass --fresh to wipe the folder and start over, or choose another --run"
        )
    info_path = run_dir / RUN_INFO
    if info_path.is_file() and data_hash is not None:
        old_data = json.loads(info_path.read_text(encoding="utf-8")).get("data_manifest_sha256")
        if old_data is not None and old_data != data_hash:
            raise RunError(
                f"{run_dir}: was trained on different prepared data (manifest sha256 {old_data[:12]}, now "
                f"{data_hash[:12]}). Pass --fresh to start over, or choose another --run"
            )


def _default_data_hash() -> str | None:
    from medenc.data import manifest_hash

    return manifest_hash()


def run_training(
    recipe: Recipe,
    run: str,
    *,
    recipe_path: str | Path | None = None,
    output_dir: str | Path | None = None,
    fresh: bool = False,
    loader: Loader | None = None,
    data_hash: str | None = None,
    callbacks: dict[int, list] | None = None,
) -> dict[str, Any]:
    """Train every enabled phase of ``recipe`` into ``<output_dir>/<run>/``; returns the run.json record.

    ``loader`` (default: the prepared data) and ``data_hash`` (default: the manifest's sha256) are injectable
    for tests, as are extra Trainer ``callbacks`` per phase number.
    """
    import torch
    from accelerate import PartialState

    state = PartialState()
    is_main = state.is_main_process
    run_dir = Path(output_dir or outputs_dir()) / run
    loader = loader or _default_loader

    # --- Everything that can be refused is refused before any training starts. ---
    # ModelError passes through with its message. Random-weight recipes need no base model.
    base_path = resolve_base_model() if recipe.model == "base" else None
    if data_hash is None:
        data_hash = _default_data_hash()
    if is_main:
        check_run_folder(run_dir, recipe, data_hash, fresh)
    state.wait_for_everyone()

    cuda = torch.cuda.is_available()
    requested = requested_precision(recipe.precision)
    precision, reason = decide_precision(requested, cuda)
    # accelerate launch exports its config's mixed precision, which the Trainer would otherwise pick up even
    # where it cannot run (fp16 on a CPU): the decision above is the one that counts.
    os.environ["ACCELERATE_MIXED_PRECISION"] = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[precision]
    if requested != precision:
        log.warning("precision: %s requested, training in %s: %s", requested, precision, reason)

    data: dict[int, PhaseData | None] = {}
    for n in (1, 2, 3):
        if recipe.phase(n).enabled:
            data[n] = prepare_phase_data(recipe, n, loader)
    mine = recipe.phase3.enabled and recipe.phase3.negatives != "curated"
    mine_train = mining_pairs(recipe, loader, "train", None) if mine else None
    if mine_train is not None and len(mine_train) == 0:
        raise DataError(f"prepared train/{PAIRS}", "phase 3 mining", "at least one pair", "none")

    # --- Records. ---
    recipe_text = to_yaml(recipe)
    info: dict[str, Any] = {}
    if (run_dir / RUN_INFO).is_file():
        info = json.loads((run_dir / RUN_INFO).read_text(encoding="utf-8"))
    old_phases = {p["phase"]: p for p in info.get("phases", [])}
    if base_path is not None:
        base_info: dict[str, Any] = {
            "id": BASE_MODEL_ID,
            "revision": BASE_MODEL_REVISION,
            "path": str(base_path),
            "sha256": info.get("base_model", {}).get("sha256") or _model_sha(base_path),
        }
    else:
        base_info = {
            "id": f"random-weight MPNet, {RANDOM_SHAPES[recipe.model]} shape (tests and timing; not a model)",
            "revision": None,
            "path": None,
            "sha256": None,
        }
    info.update(
        {
            "schema_version": SCHEMA_VERSION,
            "run": run,
            "recipe_path": str(recipe_path) if recipe_path else None,
            "recipe_sha256": recipe_sha256(recipe),
            "base_model": base_info,
            "data_manifest_sha256": data_hash,
            "precision": {"requested": requested, "used": precision, "reason": reason},
            "hardware": hardware("cuda" if cuda else "cpu", state.num_processes),
            "versions": versions(),
            "started": info.get("started") or _now(),
            "finished": None,
        }
    )
    phases: list[dict[str, Any]] = []
    for n in (1, 2, 3):
        rec = old_phases.get(n) or {"phase": n, "name": PHASES[n].name, "dir": PHASE_DIRS[n]}
        if not recipe.phase(n).enabled:
            rec = {"phase": n, "name": PHASES[n].name, "dir": PHASE_DIRS[n], "status": "skipped"}
        rec.setdefault("status", "pending")
        phases.append(rec)
    info["phases"] = phases

    def save_info() -> None:
        if is_main:
            info["total_seconds"] = training_seconds(info)
            _write_json(run_dir / RUN_INFO, info)

    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_RECIPE).write_text(recipe_text, encoding="utf-8")
        save_info()
    log.info("run %s -> %s\nresolved recipe:\n%s", run, run_dir, recipe_text.rstrip())
    if requested == precision:
        log.info("precision: %s (%s)", precision, reason)

    # --- Phases. ---
    previous: Path | None = None
    upstream_retrained = False
    for n in (1, 2, 3):
        rec = phases[n - 1]
        if not recipe.phase(n).enabled:
            log.info("phase %d (%s): disabled in the recipe", n, PHASES[n].name)
            continue
        folder = phase_dir(run_dir, n)
        if not upstream_retrained and _phase_done(run_dir, rec):
            log.info("phase %d (%s): done in an earlier run, skipped (%s)", n, PHASES[n].name, folder)
            previous = folder
            continue
        upstream_retrained = True  # later phases must start from this phase's new weights
        rec.clear()
        rec.update({"phase": n, "name": PHASES[n].name, "dir": PHASE_DIRS[n], "status": "running"})
        save_info()
        _train_phase(
            recipe,
            n,
            run_dir,
            previous,
            data.get(n),
            mine_train,
            loader,
            rec,
            precision,
            cuda,
            state,
            (callbacks or {}).get(n, []),
        )
        rec["status"] = "done"
        save_info()
        previous = folder

    # --- final/ = the last enabled phase. ---
    last = max(n for n in (1, 2, 3) if recipe.phase(n).enabled)
    if is_main:
        final = run_dir / FINAL_DIR
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(phase_dir(run_dir, last), final)
        info["final"] = {"from": PHASE_DIRS[last], "model_sha256": _model_sha(final)}
        info["finished"] = _now()
        save_info()
        shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
    state.wait_for_everyone()
    for rec in phases:
        if rec["status"] == "done":
            log.info(
                "summary: phase %d %-8s %5s rows %4s steps %7.1f s %6.2f samples/s, loss %s, eval loss %s",
                rec["phase"],
                rec["name"],
                rec.get("train_rows"),
                rec.get("steps"),
                rec.get("seconds") or 0.0,
                rec.get("samples_per_second") or 0.0,
                _fmt(rec.get("final_train_loss")),
                _fmt(rec.get("final_eval_loss")),
            )
        else:
            log.info("summary: phase %d %-8s %s", rec["phase"], rec["name"], rec["status"])
    log.info("final model: %s (from %s)", run_dir / FINAL_DIR, PHASE_DIRS[last])
    return info


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _phase3_sets(recipe, run_dir, model, pd, mine_train, loader, state, rec):
    """Phase 3's train/validation triplets: curated and/or mined (cached on disk for resume)."""
    from datasets import concatenate_datasets, load_from_disk

    cfg = recipe.phase3
    trains, vals = [], []
    rows: dict[str, int] = {}
    if pd is not None:
        trains.append(pd.train)
        vals.append(pd.validation)
        rows.update(pd.rows)
    n_mined = 0
    if mine_train is not None:
        cache = run_dir / CHECKPOINTS_DIR / "phase-3" / "mined"
        t0 = time.perf_counter()
        # The main process mines and saves; the others then read its result, so all train on the same set.
        with state.main_process_first():
            if (cache / "train").is_dir():
                mined_train = load_from_disk(str(cache / "train"))
                mined_val = load_from_disk(str(cache / "validation"))
            else:
                # Phase models load on the CPU (the Trainer moves them); mining encodes every pair's texts,
                # so it runs where training does: on a GPU, minutes rather than hours of one CPU thread.
                model.to(state.device)
                log.info(
                    "phase 3: mining hard negatives for %s anchors over %d positives",
                    cfg.mining.anchors or len(mine_train),
                    len(set(mine_train["positive"])),
                )
                mined_train = mine_negatives(
                    recipe, model, mine_train, cfg.mining.anchors, state.is_main_process
                )
                # Curated validation triplets exist only for curated sources; mined-only runs mine a few.
                if cfg.negatives == "mined":
                    val_pairs = mining_pairs(recipe, loader, "validation", cfg.validation_rows)
                    mined_val = (
                        mine_negatives(recipe, model, val_pairs, None, False) if len(val_pairs) > 1 else None
                    )
                else:
                    mined_val = None
                if mined_val is None:
                    mined_val = mined_train.select([])
                if state.is_main_process:
                    mined_train.save_to_disk(str(cache / "train"))
                    mined_val.save_to_disk(str(cache / "validation"))
        rec["mining_seconds"] = round(time.perf_counter() - t0, 1)
        n_mined = len(mined_train)
        if n_mined == 0:
            log.warning(
                "phase 3: mining found no negatives that pass the margin; widen range_max or the margin"
            )
        trains.append(mined_train)
        vals.append(mined_val)
        rows["mined"] = n_mined
    train = concatenate_datasets([t for t in trains if len(t)]) if any(len(t) for t in trains) else trains[0]
    if len(train) == 0:
        raise DataError("phase 3 triplets", "phase 3", "at least one triplet (mined or curated)", "none")
    if cfg.max_rows is not None and len(train) > cfg.max_rows:
        keep = sorted(random.Random(recipe.seed).sample(range(len(train)), cfg.max_rows))
        n_mined_kept = sum(1 for i in keep if i >= len(train) - n_mined)
        train = train.select(keep)
        if n_mined:
            rows["mined"] = n_mined_kept
            for name in list(rows):
                if name != "mined" and pd is not None:
                    rows[name] = round(pd.rows[name] * (len(keep) - n_mined_kept) / max(len(pd.train), 1))
    nonempty_vals = [v for v in vals if v is not None and len(v)]
    val = concatenate_datasets(nonempty_vals) if nonempty_vals else None
    if val is not None and len(val) > cfg.validation_rows:
        val = val.select(range(cfg.validation_rows))
    rec["negatives"] = {"mined": rows.get("mined", 0), "curated": len(train) - rows.get("mined", 0)}
    return train, val, rows


def _train_phase(
    recipe: Recipe,
    n: int,
    run_dir: Path,
    previous: Path | None,
    pd: PhaseData | None,
    mine_train,
    loader: Loader,
    rec: dict[str, Any],
    precision: str,
    cuda: bool,
    state,
    extra_callbacks: list,
) -> None:
    """Train one phase, save its folder and loss history, and fill ``rec`` (its run.json entry)."""
    from transformers.trainer_utils import get_last_checkpoint

    spec, cfg = PHASES[n], recipe.phase(n)
    seq_len = recipe.seq_len(n)
    model = load_model(recipe, previous, seq_len)

    if n == 3:
        train, val, rows = _phase3_sets(recipe, run_dir, model, pd, mine_train, loader, state, rec)
    else:
        assert pd is not None  # enabled phases 1-2 always have sources (recipe validation)
        train, val, rows = pd.train, pd.validation, pd.rows
    if val is not None and len(val) == 0:
        val = None

    world = state.num_processes
    steps_per_epoch = math.ceil(len(train) / (cfg.batch_size * world))
    steps = cfg.max_steps or math.ceil(steps_per_epoch * cfg.epochs)
    ckpt_dir = run_dir / CHECKPOINTS_DIR / f"phase-{n}"
    last_ckpt = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    loss = make_loss(recipe, n, model, world)
    rec.update(
        {
            "loss": type(loss).__name__,
            "rows": rows,
            "train_rows": len(train),
            "validation_rows": len(val) if val is not None else 0,
            "epochs": cfg.epochs,
            "steps": steps,
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "warmup_ratio": cfg.warmup_ratio,
            "max_seq_length": seq_len,
            "started_from": str(previous.name) if previous else (recipe.init_from or recipe.model),
        }
    )
    log.info(
        "phase %d (%s, %s): %d train rows %s, %d validation rows, %d steps (batch %d x %d process(es), "
        "%s epoch(s)), max_seq_length %d, precision %s%s",
        n,
        spec.name,
        rec["loss"],
        len(train),
        rows,
        rec["validation_rows"],
        steps,
        cfg.batch_size,
        world,
        cfg.epochs,
        seq_len,
        precision,
        f", resuming from {last_ckpt}" if last_ckpt else "",
    )

    trainer = build_trainer(
        recipe,
        n,
        model,
        train,
        val,
        precision=precision,
        cuda=cuda,
        output_dir=ckpt_dir,
        num_processes=world,
        callbacks=extra_callbacks,
        loss=loss,
        run_name=f"{run_dir.name}-phase-{n}",
    )
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last_ckpt)
    seconds = time.perf_counter() - t0
    eval_loss = trainer.evaluate()["eval_loss"] if val is not None else None

    history = trainer.state.log_history
    train_losses = [e["loss"] for e in history if "loss" in e]
    samples = result.metrics.get("train_samples_per_second")
    rec.update(
        {
            "steps": trainer.state.global_step,
            "seconds": round(seconds, 1),
            "samples_per_second": round(samples, 2) if samples else None,
            "final_train_loss": train_losses[-1] if train_losses else result.metrics.get("train_loss"),
            "final_eval_loss": eval_loss,
        }
    )
    if last_ckpt:
        rec["resumed_from"] = Path(last_ckpt).name
    folder = phase_dir(run_dir, n)
    if state.is_main_process:
        # Save beside the target and rename, so a phase folder is either complete or absent.
        tmp = folder.with_name(folder.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        # Training lengths are a speed choice; the saved folder carries the length users encode at.
        trainer.model.max_seq_length = INFERENCE_MAX_SEQ_LENGTH
        trainer.model.save(str(tmp))
        (tmp / LOSS_HISTORY).write_text(json.dumps(_loss_history(history), indent=2) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        rec["model_sha256"] = _model_sha(folder)
        # The phase is safe in its folder now; its checkpoints only cost disk.
        for child in ckpt_dir.glob("checkpoint-*"):
            shutil.rmtree(child, ignore_errors=True)
    state.wait_for_everyone()
    log.info(
        "phase %d (%s) done in %.1f s, %s samples/s, train loss %s, eval loss %s -> %s",
        n,
        spec.name,
        seconds,
        rec["samples_per_second"],
        _fmt(rec["final_train_loss"]),
        _fmt(eval_loss),
        folder,
    )


__all__ = [
    "PHASES",
    "LengthGroupedBatchSampler",
    "PhaseSpec",
    "build_trainer",
    "card_data",
    "check_run_folder",
    "decide_precision",
    "load_model",
    "make_loss",
    "requested_precision",
    "run_training",
    "select_sources",
]
