"""Smaller embeddings: the final and base models scored at truncated widths (results.json ``dimensions``).

Users with small vector indexes load the model with ``SentenceTransformer(..., truncate_dim=d)``, which keeps
the first ``d`` values of each embedding the full model computes. So these figures come from the cached
full-width embeddings cut to ``d`` and re-normalised: no re-encoding, the very vectors ``truncate_dim`` gives
(tests/test_evaluation.py checks it). A model trained with ``phase2.matryoshka_dims`` should lose little here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medenc.evaluation.scoring import SuiteScores, Table, intervals, resample, score_set
from medenc.evaluation.sets import SETS, EvalSet

DEFAULT_DIMENSIONS = (256, 128)


def truncate(table: Table, dim: int) -> Table:
    """Each embedding cut to its first ``dim`` values and scaled to unit length."""
    # Cosine figures do not depend on the scaling; a unit vector is what a dot-product index would hold
    # (truncate_dim with normalize_embeddings=True).
    out = {}
    for text, vec in table.items():
        cut = vec[:dim]
        out[text] = cut / max(float(np.linalg.norm(cut)), 1e-12)
    return out


def dimensions(width: int, requested: Sequence[int]) -> list[int]:
    """The full width first, then each requested smaller dimension, largest first."""
    return [width, *sorted({d for d in requested if 0 < d < width}, reverse=True)]


def _score_at(scores: SuiteScores, model: str, sets: dict[str, EvalSet], dim: int, width: int) -> dict:
    """One model's scored sets at ``dim``; at full width, the main figures themselves (nothing recomputed)."""
    if dim == width:
        return {name: scores.raw[model][name] for name in sets}
    short, passage = scores.tables[model]
    cut_short = truncate(short, dim)
    cut_passage = truncate(passage, dim) if passage is not None else None
    return {name: score_set(es, cut_short, cut_passage) for name, es in sets.items()}


def dimension_results(
    scores: SuiteScores,
    models: Sequence[str],
    eval_sets: dict[str, EvalSet],
    requested: Sequence[int],
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, dict]]:
    """{dim: {model: {set: {metric: {value, ci_low, ci_high, n}}}}}, or {} when nothing is smaller.

    The resampled items of a set are those of the main figures (same seed), so the full-width entry equals
    ``results`` and every dimension is read through the same resamples.
    """
    # The sets a user's index serves (EvalSetSpec.dimensions): RQE and the triplets stay at full width only.
    sets = {name: es for name, es in eval_sets.items() if name in SETS and SETS[name].dimensions}
    if not sets or not requested:
        return {}
    short = scores.tables[models[0]][0]
    width = len(next(iter(short.values())))
    dims = dimensions(width, requested)
    if len(dims) == 1:
        return {}
    raw = {(d, m): _score_at(scores, m, sets, d, width) for d in dims for m in models}
    out: dict[str, dict[str, dict]] = {str(d): {m: {} for m in models} for d in dims}
    for name, es in sets.items():
        idx = resample(name, es.n, n_boot, seed)
        for (d, m), scored in raw.items():
            out[str(d)][m][name] = intervals(scored[name], idx, es.n)[0]
    return out
