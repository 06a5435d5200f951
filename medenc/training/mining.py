"""Phase 3's triplets: hard negatives mined with the phase-2 model, and/or curated ones.

Mined sets are cached in the run's checkpoints folder, so a resumed phase 3 trains on exactly the triplets it
started with.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from medenc.core.errors import DataError
from medenc.core.layout import COLUMNS, TRIPLETS
from medenc.core.modeling import token_lengths
from medenc.core.progress import encode_in_chunks
from medenc.training.data import Loader, PhaseData, mining_pairs
from medenc.training.recipe import Recipe

log = logging.getLogger("medenc.training")


class _ProgressEncoder:
    """The model as ``mine_hard_negatives`` sees it, with its two encodes reporting progress our way.

    ``mine_hard_negatives`` always draws ST's bars (``show_progress_bar=True``), which a log file cannot use;
    through this stand-in its encodes go through ``encode_in_chunks`` (a bar on a terminal, log lines
    elsewhere, nothing when not ``verbose``). Everything else is the model's own.
    """

    def __init__(self, model, verbose: bool):
        self._model, self._verbose = model, verbose

    def __getattr__(self, name: str):
        """Everything but the two encodes: the model's own (similarity, device, card data...)."""
        return getattr(self._model, name)

    def _encode(self, fn, texts: list[str], what: str, batch_size: int = 32, **kwargs) -> np.ndarray:
        """``fn`` over ``texts`` in chunks; ST's own bar and pool arguments are replaced by ours."""
        kwargs.pop("pool", None)  # mining runs in this process (use_multi_process stays off)
        desc = f"phase 3: mining, encoding {what}"
        lengths = token_lengths(self._model, texts)
        return encode_in_chunks(
            fn, texts, batch_size=batch_size, desc=desc, enabled=self._verbose, lengths=lengths, **kwargs
        )

    def encode_query(self, texts: list[str], **kwargs) -> np.ndarray:
        """The anchors."""
        return self._encode(self._model.encode_query, texts, "anchors", **kwargs)

    def encode_document(self, texts: list[str], **kwargs) -> np.ndarray:
        """The corpus (every positive)."""
        return self._encode(self._model.encode_document, texts, "the corpus", **kwargs)


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
        _ProgressEncoder(model, verbose),
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


def _mine(recipe: Recipe, model, mine_train, loader: Loader, state) -> tuple[Any, Any]:
    """Mine the training triplets, and validation triplets where no curated ones exist."""
    cfg = recipe.phase3
    # Phase models load on the CPU (the Trainer moves them); mining encodes every pair's texts, so it runs
    # where training does: on a GPU, minutes rather than hours of one CPU thread.
    model.to(state.device)
    log.info(
        "phase 3: mining hard negatives for %s anchors over %d positives",
        cfg.mining.anchors or len(mine_train),
        len(set(mine_train["positive"])),
    )
    mined_train = mine_negatives(recipe, model, mine_train, cfg.mining.anchors, state.is_main_process)
    mined_val = None
    # Curated validation triplets exist only for curated sources; mined-only runs mine a few.
    if cfg.negatives == "mined":
        val_pairs = mining_pairs(recipe, loader, "validation", cfg.validation_rows)
        if len(val_pairs) > 1:
            mined_val = mine_negatives(recipe, model, val_pairs, None, False)
    return mined_train, mined_val if mined_val is not None else mined_train.select([])


def _cached(cache: Path) -> bool:
    """Whether ``cache`` holds the mined sets; one cut by a kill is moved aside and mined again."""
    if not cache.exists():
        return False
    if (cache / "train" / "state.json").is_file():
        return True
    aside = cache.with_name(f"{cache.name}.incomplete")
    shutil.rmtree(aside, ignore_errors=True)
    cache.rename(aside)
    log.warning("phase 3: mined-triplet cache %s is incomplete, probably cut by a kill: mining again", cache)
    return False


def _save(cache: Path, mined_train, mined_val) -> None:
    """Both sets into a sibling folder, then one rename: the cache is either whole or absent.

    An empty validation set is not saved (datasets cannot load an empty one back); absent means empty.
    """
    tmp = cache.with_name(f"{cache.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    mined_train.save_to_disk(str(tmp / "train"))
    if len(mined_val):
        mined_val.save_to_disk(str(tmp / "validation"))
    tmp.rename(cache)


def _load(cache: Path) -> tuple[Any, Any]:
    from datasets import load_from_disk

    train = load_from_disk(str(cache / "train"))
    has_val = (cache / "validation").is_dir()
    return train, load_from_disk(str(cache / "validation")) if has_val else train.select([])


def mined_sets(recipe: Recipe, model, mine_train, loader: Loader, state, cache: Path) -> tuple[Any, Any]:
    """The mined (train, validation) triplets: from ``cache`` when an earlier attempt saved them."""
    # The main process mines and saves; the others then read its result, so all train on the same set.
    with state.main_process_first():
        if _cached(cache):
            return _load(cache)
        mined_train, mined_val = _mine(recipe, model, mine_train, loader, state)
        if state.is_main_process:
            _save(cache, mined_train, mined_val)
    return mined_train, mined_val


def _cap_rows(recipe: Recipe, train, pd: PhaseData | None, rows: dict[str, int], n_mined: int):
    """At most ``phase3.max_rows`` triplets, the per-source counts scaled to what was kept."""
    keep = sorted(random.Random(recipe.seed).sample(range(len(train)), recipe.phase3.max_rows))
    n_mined_kept = sum(1 for i in keep if i >= len(train) - n_mined)
    if n_mined:
        rows["mined"] = n_mined_kept
        for name in list(rows):
            if name != "mined" and pd is not None:
                rows[name] = round(pd.rows[name] * (len(keep) - n_mined_kept) / max(len(pd.train), 1))
    return train.select(keep)


def triplet_sets(recipe: Recipe, pd: PhaseData | None, mined: tuple[Any, Any] | None):
    """Phase 3's (train, validation, rows per source, negatives) triplets: curated (``pd``) and/or ``mined``.

    ``negatives``: {"mined": n, "curated": n} training triplets, the mined ones after the curated ones.
    """
    from datasets import concatenate_datasets

    cfg = recipe.phase3
    trains, vals, rows = [], [], {}
    if pd is not None:
        trains.append(pd.train)
        vals.append(pd.validation)
        rows.update(pd.rows)
    n_mined = 0
    if mined is not None:
        n_mined = len(mined[0])
        if n_mined == 0:
            log.warning("phase 3: mining found no negatives that pass the margin; widen range_max or margin")
        trains.append(mined[0])
        vals.append(mined[1])
        rows["mined"] = n_mined
    train = concatenate_datasets([t for t in trains if len(t)]) if any(len(t) for t in trains) else trains[0]
    if len(train) == 0:
        raise DataError("phase 3 triplets", "phase 3", "at least one triplet (mined or curated)", "none")
    if cfg.max_rows is not None and len(train) > cfg.max_rows:
        train = _cap_rows(recipe, train, pd, rows, n_mined)
    nonempty_vals = [v for v in vals if v is not None and len(v)]
    val = concatenate_datasets(nonempty_vals) if nonempty_vals else None
    if val is not None and len(val) > cfg.validation_rows:
        val = val.select(range(cfg.validation_rows))
    negatives = {"mined": rows.get("mined", 0), "curated": len(train) - rows.get("mined", 0)}
    return train, val, rows, negatives
