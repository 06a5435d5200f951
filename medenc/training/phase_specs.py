"""What distinguishes one training phase from another, apart from the recipe: its folder name and data set.

The loss is the recipe's choice (``medenc.training.losses``): any loss whose inputs the phase's data set has.
"""

from __future__ import annotations

from dataclasses import dataclass

from medenc.core.layout import COLUMNS, GRADED_PAIRS, PAIRS, TRIPLETS


@dataclass(frozen=True)
class PhaseSpec:
    """What distinguishes one phase from another, apart from the recipe's numbers."""

    number: int
    name: str  # its name in run.json and the logs (its folder is layout.PHASE_DIRS, named by number)
    data_set: str  # the prepared set it trains on
    columns: tuple[str, ...]


PHASES: dict[int, PhaseSpec] = {
    1: PhaseSpec(1, "cosine", GRADED_PAIRS, COLUMNS[GRADED_PAIRS]),
    2: PhaseSpec(2, "mnrl", PAIRS, COLUMNS[PAIRS]),
    3: PhaseSpec(3, "triplet", TRIPLETS, COLUMNS[TRIPLETS]),
}
