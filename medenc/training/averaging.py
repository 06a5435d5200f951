"""Weight averaging with the starting model (WiSE-FT), the last step of ``make train`` when the recipe asks.

Fine-tuning pulls the weights away from what the base model knew; interpolating them back,
``(1 - w) * start + w * tuned``, keeps much of the tuned model's gain and much of the base's breadth
(Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022; BioLORD-2023 averages its medical
model with the same base, all-mpnet-base-v2). The share ``w`` is chosen on the prepared *validation* split,
never on a test set: every validation row of each kind (graded pairs, pairs, triplets), all sources, so
sources the recipe never trains on count too. ``w = 1`` (no averaging) is always a candidate, so averaging
is chosen only where it does at least as well on validation.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from medenc.core.layout import GRADED_PAIRS, PAIRS, TRIPLETS
from medenc.training.data import Loader
from medenc.training.recipe import Recipe
from medenc.training.trainer import validation_evaluator

log = logging.getLogger("medenc.training")

# The validation kinds, each scored by its phase's evaluator's primary metric (Spearman, nDCG@10, accuracy).
KINDS = (GRADED_PAIRS, PAIRS, TRIPLETS)


@dataclass(frozen=True)
class Candidate:
    """One share of the tuned weights and its validation figures."""

    weight: float
    scores: dict[str, float]  # kind -> the kind's primary metric
    mean: float


@dataclass(frozen=True)
class AverageChoice:
    """What the averaging measured and chose (run.json's ``final.average``)."""

    of: str  # the folder averaged with the starting model
    weight: float  # the share of the tuned weights in final/
    candidates: list[Candidate]
    validation_rows: dict[str, int]
    seconds: float

    def as_record(self) -> dict[str, Any]:
        """The choice as run.json holds it."""
        return asdict(self)


def interpolate(start: dict, tuned: dict, weight: float) -> dict:
    """``(1 - weight) * start + weight * tuned`` for each floating tensor; other tensors (position ids) as
    tuned. Refuses state dicts that are not of the same shape: averaging needs one architecture."""
    if start.keys() != tuned.keys():
        missing = sorted(set(start) ^ set(tuned))[:5]
        raise ValueError(f"cannot average weights of different models (keys differ: {missing})")
    out = {}
    for key, t in tuned.items():
        s = start[key]
        if s.shape != t.shape:
            raise ValueError(f"cannot average {key}: shapes {tuple(s.shape)} and {tuple(t.shape)}")
        out[key] = s.lerp(t, weight) if t.is_floating_point() else t.clone()
    return out


def _validation_sets(loader: Loader) -> dict[str, Any]:
    """Every validation row of each kind that has any."""
    # `make data` writes every kind; a missing one is the loader's DataError, which names the fix.
    return {kind: ds for kind in KINDS if len(ds := loader("validation", kind))}


def _score(model, evaluators: dict[str, Any], precision: str) -> dict[str, float]:
    """Each kind's primary metric, under the precision training used (bf16 autocast or fp32)."""
    import torch

    bf16 = precision == "bf16"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    scores = {}
    with torch.inference_mode(), autocast:
        for kind, evaluator in evaluators.items():
            metrics = evaluator(model)
            scores[kind] = round(float(metrics[evaluator.primary_metric]), 6)
    return scores


def choose_weight(
    recipe: Recipe, start_model, tuned_model, loader: Loader, precision: str, of: str
) -> AverageChoice:
    """Score every candidate share on the validation split and return the choice.

    ``tuned_model`` is modified in place (it ends holding the chosen weights); ``start_model`` is only read.
    """
    t0 = time.perf_counter()
    sets = _validation_sets(loader)
    if not sets:
        raise ValueError("weight averaging needs validation rows; the prepared validation split has none")
    evaluators = {kind: validation_evaluator(kind, ds, recipe) for kind, ds in sets.items()}
    body = tuned_model[0].auto_model
    start = start_model[0].auto_model.state_dict()
    tuned = {k: v.clone() for k, v in body.state_dict().items()}
    candidates = []
    for weight in sorted(set(recipe.average.weights) | {1.0}):
        body.load_state_dict(interpolate(start, tuned, weight))
        scores = _score(tuned_model, evaluators, precision)
        mean = round(sum(scores.values()) / len(scores), 6)
        candidates.append(Candidate(weight, scores, mean))
        log.info("averaging: weight %.3f of %s, validation %s, mean %.4f", weight, of, scores, mean)
    # The best mean; a tie goes to the larger share (closer to the model that trained). Computed again rather
    # than kept: one model's weights in memory per candidate would be gigabytes for the base model's size.
    best = max(candidates, key=lambda c: (c.mean, c.weight))
    body.load_state_dict(interpolate(start, tuned, best.weight))
    rows = {kind: len(ds) for kind, ds in sets.items()}
    return AverageChoice(of, best.weight, candidates, rows, round(time.perf_counter() - t0, 1))
