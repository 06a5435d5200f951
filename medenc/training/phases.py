"""What distinguishes one training phase from another, apart from the recipe's numbers."""

from __future__ import annotations

from dataclasses import dataclass

from medenc.core.layout import COLUMNS, GRADED_PAIRS, PAIRS, TRIPLETS


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
