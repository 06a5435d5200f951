"""tools/name_swaps.py: a name swap is a name on one side whose paired name is on the other side only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("name_swaps", ROOT / "tools" / "name_swaps.py")
name_swaps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(name_swaps)


def test_swap_found_only_where_the_other_side_uses_the_other_name():
    names = name_swaps.lexicon([("CLL", "chronic lymphocytic leukemia"), ("MI", "heart attack")])
    assert "mi" not in names  # two letters: matched everywhere, left out
    hit = name_swaps.swap("What causes CLL?", "Chronic lymphocytic leukemia is a cancer of the blood.", names)
    assert hit == ("cll", "chronic lymphocytic leukemia")
    # Both sides use the same name: nothing for the pairs to teach.
    both = "CLL is a cancer; chronic lymphocytic leukemia too."
    assert name_swaps.swap("What causes CLL?", both, names) is None
    assert name_swaps.swap("What causes gout?", "Uric acid crystals.", names) is None
