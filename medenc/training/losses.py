"""The losses a phase can train with, by the recipe's name for them (``phaseN.loss``).

Any phase may use any loss whose inputs its data set has: MNRL takes (anchor, positive) pairs or
(anchor, positive, negative) triplets, so phase 3 can train its triplets with MNRL as well as TripletLoss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medenc.core.layout import GRADED_PAIRS, PAIRS, TRIPLETS

if TYPE_CHECKING:
    from medenc.training.recipe import PhaseConfig


@dataclass(frozen=True)
class LossSpec:
    """A recipe loss name's sentence-transformers class, the data sets it fits and how it is built."""

    class_name: str
    data_sets: tuple[str, ...]  # prepared sets whose columns the loss takes
    # The other rows of a batch are its negatives: a duplicate text would be a false one (no_duplicates).
    in_batch_negatives: bool
    build: Callable[[PhaseConfig, Any, int], Any]  # (phase config, model, number of processes) -> loss


def _losses():
    from sentence_transformers.sentence_transformer import losses

    return losses


def _plain(class_name: str) -> Callable[[PhaseConfig, Any, int], Any]:
    """A loss that takes the model alone."""
    return lambda cfg, model, num_processes: getattr(_losses(), class_name)(model)


def _mnrl(cfg: PhaseConfig, model, num_processes: int):
    # With several processes, gather embeddings so every process sees all in-batch negatives.
    return _losses().MultipleNegativesRankingLoss(model, gather_across_devices=num_processes > 1)


def _cached_mnrl(cfg: PhaseConfig, model, num_processes: int):
    return _losses().CachedMultipleNegativesRankingLoss(
        model, gather_across_devices=num_processes > 1, mini_batch_size=cfg.mini_batch_size
    )


def _triplet(cfg: PhaseConfig, model, num_processes: int):
    losses = _losses()
    metric = {
        "cosine": losses.TripletDistanceMetric.COSINE,
        "euclidean": losses.TripletDistanceMetric.EUCLIDEAN,
    }[cfg.distance]
    return losses.TripletLoss(model, distance_metric=metric, triplet_margin=cfg.margin)


LOSSES: dict[str, LossSpec] = {
    "cosine": LossSpec("CosineSimilarityLoss", (GRADED_PAIRS,), False, _plain("CosineSimilarityLoss")),
    "cosent": LossSpec("CoSENTLoss", (GRADED_PAIRS,), False, _plain("CoSENTLoss")),
    "mnrl": LossSpec("MultipleNegativesRankingLoss", (PAIRS, TRIPLETS), True, _mnrl),
    "cached_mnrl": LossSpec("CachedMultipleNegativesRankingLoss", (PAIRS, TRIPLETS), True, _cached_mnrl),
    "triplet": LossSpec("TripletLoss", (TRIPLETS,), False, _triplet),
}
