"""Cross-source concept groups on a toy registry: shared names join concepts, the hold-out is per group."""

from __future__ import annotations

from collections import Counter, defaultdict

from medenc.core import layout
from medenc.data import concept_groups
from medenc.data.concept_groups import drop_held, group_concepts
from medenc.data.source import Pin, Source, SourceInfo, bucket, concept_held, row


def _source(folder: str, concepts: list[tuple[str, list[str]]], by_id: bool = False) -> Source:
    info = SourceInfo(folder, folder, "CC0", "train", "https://example.org", "", folder)
    return Source(
        info=info,
        files=(),
        pins={"f": Pin("0" * 64)},
        read=lambda folder, skips: None,
        concept_names=lambda _: concepts,
        hold_by_id=by_id,
    )


def _ontology_ids(held: bool, n: int) -> list[str]:
    """``n`` ontology ids whose id hold-out (concept_held) is ``held``."""
    out = [f"DOID:{i}" for i in range(10_000) if concept_held(f"DOID:{i}") == held]
    return out[:n]


def test_a_shared_name_joins_sources_and_the_ontology_decides() -> None:
    (held_id,), (kept_a, kept_b) = _ontology_ids(True, 1), _ontology_ids(False, 2)
    onto = _source(
        "onto", [(held_id, ["Hypertension", "HTN"]), (kept_a, ["Asthma"]), (kept_b, ["Gout"])], True
    )
    icd = _source("icd", [("I10", ["Essential hypertension", "hypertension"]), ("J45", ["asthma "])])
    wn = _source("wn", [("1", ["essential hypertension", "high blood pressure"]), ("2", ["flu", "grippe"])])
    registry = (onto, icd, wn)
    g = group_concepts(registry, {"onto": None, "icd": None, "wn": None})
    # "hypertension" joins the DO concept and I10; "essential hypertension" brings in the WordNet synset
    assert g.group[("onto", held_id)] == g.group[("icd", "I10")] == g.group[("wn", "1")]
    assert g.held("onto", held_id) and g.held("icd", "I10") and g.held("wn", "1")
    assert "high blood pressure" in g.held_keys  # a WordNet-only name of a held concept
    assert not g.held("icd", "J45")  # asthma trains: its ontology concept is not held by id
    assert g.held_ontology_ids == {held_id} and g.moved == 0
    # a group without an ontology concept: by hash of its smallest member
    flu = bucket("names-test:('wn', '2')") < concept_groups.NAMES_TEST_FRACTION
    assert g.held("wn", "2") == flu
    rows = {
        layout.PAIRS: [
            row(layout.PAIRS, "wn_syn", "1", "high blood pressure", "HBP"),
            row(layout.PAIRS, "icd_inc", "J45", "asthma", "Asthma, unspecified"),
        ]
    }
    dropped: defaultdict[str, Counter] = defaultdict(Counter)
    kept = drop_held(rows, g, dropped)
    assert [r["anchor"] for r in kept[layout.PAIRS]] == ["asthma"]
    assert dropped["pairs: a name of a held-out concept (any source)"] == {"wn_syn": 1}


def test_a_held_concept_sharing_a_name_with_one_that_trains_leaves_the_test() -> None:
    (held_id,), (kept_id,) = _ontology_ids(True, 1), _ontology_ids(False, 1)
    onto = _source("onto", [(held_id, ["common cold"]), (kept_id, ["Acute coryza", "common cold"])], True)
    g = group_concepts((onto,), {"onto": None})
    assert not g.held("onto", held_id) and not g.held("onto", kept_id)
    assert g.moved == 1 and not g.held_ontology_ids


def test_a_name_shared_by_many_concepts_does_not_chain_them() -> None:
    icd = _source("icd", [(f"X{i}", ["Other specified disorder", f"disorder {i}"]) for i in range(5)])
    g = group_concepts((icd,), {"icd": None})
    assert len(set(g.group.values())) == 5  # shared by more than MAX_SHARED codes: no join
