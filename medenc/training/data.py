"""Each phase's training and validation rows, selected from the prepared sets as the recipe says.

Phase 3's mined triplets need the phase-2 model; ``medenc.training.mining`` adds them when phase 3 starts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medenc.core.errors import DataError, RecipeError
from medenc.core.layout import COLUMNS, GRADED_PAIRS, PAIRS, TRIPLETS
from medenc.training.phase_specs import PHASES
from medenc.training.recipe import Recipe

# (split, set name) -> Dataset; the default reads the prepared data (medenc.data); tests inject sets.
Loader = Callable[[str, str], Any]


def default_loader(split: str, name: str):
    """The prepared set ``<prepared>/<split>/<name>`` (written by ``make data``)."""
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
    Rows come grouped by source, in the order of ``counts`` (``split_sets`` relies on it).
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


def split_sets(ds, sizes: dict[str, int]) -> dict[str, Any]:
    """``ds`` cut into consecutive named blocks of ``sizes`` rows (empty ones left out): one dataset each."""
    sets, start = {}, 0
    for name, size in sizes.items():
        if size:
            sets[name] = ds.select(range(start, start + size))
        start += size
    if start != len(ds):  # the blocks must be the rows as selected, not an estimate of them
        raise ValueError(f"blocks {sizes} do not add up to the {len(ds)} rows")
    return sets


def replay_pairs(recipe: Recipe, n: int, loader: Loader):
    """Phase ``n``'s ``replay_graded`` rows: phase 1's graded pairs as phase 1 selects them, then capped."""
    rows = getattr(recipe.phase(n), "replay_graded", 0)
    if not rows or not recipe.phase(n).enabled:
        return None
    ds, _ = select_sources(
        loader("train", GRADED_PAIRS),
        recipe.phase1.used_sources(),
        COLUMNS[GRADED_PAIRS],
        phase=1,
        set_name=GRADED_PAIRS,
        split="train",
        seed=recipe.seed,
        cap=rows,
    )
    return ds


def near_miss_sets(recipe: Recipe, loader: Loader) -> dict[str, Any]:
    """Phase 2's curated near-miss triplets (``phase2.near_miss_sources``): source -> its dataset."""
    cfg = recipe.phase2
    if not cfg.enabled or not cfg.near_misses():
        return {}
    ds, counts = select_sources(
        loader("train", TRIPLETS),
        cfg.near_misses(),
        COLUMNS[TRIPLETS],
        phase=2,
        set_name=TRIPLETS,
        split="train",
        seed=recipe.seed,
    )
    return split_sets(ds, counts)


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
    include = cfg.curated_sources()
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


def mining_sources(recipe: Recipe) -> dict[str, int | None]:
    """Rows per source that phase 3 mines over: ``phase3.mining.sources``, else phase 2's selection."""
    chosen = recipe.phase3.mining.sources
    return recipe.phase2.used_sources() if chosen is None else {k: v for k, v in chosen.items() if v != 0}


def mining_pairs(recipe: Recipe, loader: Loader, split: str, cap: int | None):
    """The pairs that phase 3 mines over (:func:`mining_sources`)."""
    ds, _ = select_sources(
        loader(split, PAIRS),
        mining_sources(recipe),
        COLUMNS[PAIRS],
        phase=3,
        set_name=PAIRS,
        split=split,
        seed=recipe.seed,
        required=split == "train",
        cap=cap,
    )
    return ds
