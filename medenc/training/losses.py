"""The losses a phase can train with, by the recipe's name for them (``phaseN.loss``).

Any phase may use any loss whose inputs its data set has: MNRL takes (anchor, positive) pairs or
(anchor, positive, negative) triplets, so phase 3 can train its triplets with MNRL as well as TripletLoss.

``gist`` is MNRL with a guide (GISTEmbedLoss, Solatorio 2024): an in-batch negative that the guide, the
frozen model the run started from, finds closer to the anchor than the anchor's own positive is left out of
the softmax, so a synonym or a related concept that happens to share a batch is not pushed away.

``mnrl_keep`` is MNRL plus ``keep_weight`` x the mean cosine distance of the batch's embeddings to the same
frozen start model's (medenc/training/keep_loss.py), so what MNRL does not need moved stays where the base
had it.
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
    # (phase config, model, number of processes) -> loss; a guided loss also takes its guide model
    build: Callable[..., Any]
    guided: bool = False


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


# 1 / MNRL's default scale (20): with it, the guide's masking is the only difference from `mnrl`. GIST's own
# default (0.01, a scale of 100) would change two things at once.
GIST_TEMPERATURE = 0.05


def _gist(cfg: PhaseConfig, model, num_processes: int, guide):
    return _losses().GISTEmbedLoss(
        model, guide, temperature=GIST_TEMPERATURE, gather_across_devices=num_processes > 1
    )


def _mnrl_keep(cfg: PhaseConfig, model, num_processes: int, guide):
    from medenc.training.keep_loss import KeepNearStartLoss

    return KeepNearStartLoss(model, _mnrl(cfg, model, num_processes), guide, cfg.keep_weight)


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
    "gist": LossSpec("GISTEmbedLoss", (PAIRS, TRIPLETS), True, _gist, guided=True),
    "mnrl_keep": LossSpec("KeepNearStartLoss", (PAIRS, TRIPLETS), True, _mnrl_keep, guided=True),
    "triplet": LossSpec("TripletLoss", (TRIPLETS,), False, _triplet),
}
