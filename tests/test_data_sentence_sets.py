"""The held-out sentence sets of the six sentence sources (issue 30, item 2) and their hold-out.

Each set is built from a small excerpt of the real files (tests/fakes.py: records copied into
``tmp_path``, no data file committed); a build of the six excerpts writes the sets, and
no held-out text, nor its other side, is in any training row; a malformed file still stops the build.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fakes import (
    RAW,
    kqa_excerpt,
    lay_excerpt,
    medec_excerpt,
    mediqa_excerpt,
    mts_excerpt,
    needs_raw,
    pin_excerpts,
    wiki_excerpt,
)

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.core.eval_sets import EVAL_SETS, Target
from medenc.data import leakage, pins, prepare, twins
from medenc.data.parsing import SkipLog
from medenc.data.source import Source
from medenc.data.sources import (
    PENDING,
    REGISTRY,
    k_qa,
    laymaker,
    medec,
    mediqa2021,
    mts_dialog,
    nfcorpus_dev,
    simplewiki_medical,
)

# Where the sources added after the six (issue 39: nfcorpus_dev, ...) begin in the registry.
LATER_AT = REGISTRY.index(nfcorpus_dev.SOURCE)
SIX: tuple[Source, ...] = (
    laymaker.SOURCE,
    mts_dialog.SOURCE,
    simplewiki_medical.SOURCE,
    k_qa.SOURCE,
    mediqa2021.SOURCE,
    medec.SOURCE,
)
NEW_SETS = ("lay_to_clinical", "clinical_to_lay", "mts_dialog", "k_qa", "medec")
pytestmark = needs_raw(SIX, "raw sentence sources")


def _held_texts(records: dict[str, object]) -> set[str]:
    """Every held-out text of the six (both sides), by key: what must never train."""
    lay = records["laymaker"]
    out = {t for p in lay if laymaker.held(p.unit) for t in (p.original, p.reference)}  # type: ignore[attr-defined]
    mts = records["mts_dialog"]
    # The test files' generic sections ("None.", "Noncontributory.") are no test text (left out of the set)
    # and do train, as those of the training file do: the set's pairs are what is held out.
    out |= {t for e in mts_dialog.test_pairs(mts) for t in (e.dialogue, e.section)}  # type: ignore[arg-type]
    kqa = records["k_qa"]
    out |= {t for a in kqa.answered for t in (a.question, a.answer)}  # type: ignore[attr-defined]
    out |= {
        t
        for m in records["medec"]  # type: ignore[attr-defined]
        if m.split == medec.TEST_SPLIT and m.error_flag
        for t in (m.error_sentence, m.corrected_sentence)
    }
    return {leakage.key(t) for t in out}


def _training_keys(sets: dict) -> set[str]:
    return {
        leakage.key(str(r[c]))
        for split in layout.TRAIN_SPLITS
        for fmt, cols in layout.COLUMNS.items()
        for r in sets.get((split, fmt), [])
        for c in cols
    }


# --- each set from an excerpt ---------------------------------------------------------------------------
def test_laymaker_sets_hold_out_whole_units(tmp_path: Path) -> None:
    pairs = laymaker.read(lay_excerpt(tmp_path / "laymaker"))
    sets = laymaker.test_sets(pairs).sets
    assert [p.id for p in pairs if laymaker.held(p.unit)] == ["test-set:8"]  # rewritten: both directions
    lay = next(p for p in pairs if p.id == "test-set:8")
    for name, query, answer in (
        ("lay_to_clinical", lay.reference, lay.original),
        ("clinical_to_lay", lay.original, lay.reference),
    ):
        queries, corpus = sets[("test", f"{name}_queries")], sets[("test", f"{name}_corpus")]
        assert [q["text"] for q in queries] == [query]
        relevant = {r["corpus_id"] for r in sets[("test", f"{name}_qrels")]}
        assert [c["text"] for c in corpus if c["id"] in relevant] == [answer]
        # distractors: the units none of whose rows is rewritten (test-set:223 has a rewritten twin, 676)
        assert [c["text"] for c in corpus if c["_distractor"]] == [
            p.original for p in pairs if p.id in ("test-set:1", "test-set:4")
        ]
    rows = laymaker.training_rows(pairs, SkipLog())[layout.PAIRS]
    assert "test-set:8" not in {r["_group"].split(":", 1)[1] for r in rows} and len(rows) == 4
    assert not {lay.original, lay.reference} & {t for r in rows for t in (r["anchor"], r["positive"])}


def test_mts_dialog_set_is_the_two_test_files(tmp_path: Path) -> None:
    records = mts_dialog.read(mts_excerpt(tmp_path / "mts_dialog"))
    sets = mts_dialog.test_sets(records).sets
    queries = sets[("test", "mts_dialog_queries")]
    kept = mts_dialog.test_pairs(records)
    assert [q["id"] for q in queries] == [f"{e.split}:{e.id}" for e in kept]
    assert {e.split for e in kept} == {"test1", "test2"} and len(kept) == 3  # one generic section left out
    left = [e for s in mts_dialog.TEST_SPLITS for e in records[s] if e not in kept]
    assert all(len(e.section.split()) < mts_dialog.MIN_TEST_SECTION_WORDS for e in left)
    corpus = {c["id"]: c["text"] for c in sets[("test", "mts_dialog_corpus")]}
    qrels = {r["query_id"]: corpus[r["corpus_id"]] for r in sets[("test", "mts_dialog_qrels")]}
    assert qrels == {f"{e.split}:{e.id}": e.section for e in kept}
    assert mts_dialog.manifest_info(records)["mts_dialog_test_queries"] == 3


def test_kqa_set_question_to_its_answer(tmp_path: Path) -> None:
    data = k_qa.read(kqa_excerpt(tmp_path / "k_qa"))
    sets = k_qa.test_sets(data).sets
    corpus = {c["id"]: c["text"] for c in sets[("test", "k_qa_corpus")]}
    queries = {q["id"]: q["text"] for q in sets[("test", "k_qa_queries")]}
    got = {queries[r["query_id"]]: corpus[r["corpus_id"]] for r in sets[("test", "k_qa_qrels")]}
    assert got == {a.question: a.answer for a in data.answered} and len(got) == 30
    assert k_qa.SOURCE.training_rows is None  # test only: nothing of K-QA trains


def test_medec_triplets_test_file_held_validation_trains(tmp_path: Path) -> None:
    texts = medec.read(medec_excerpt(tmp_path / "medec"))
    test = medec.test_sets(texts).sets[("test", "medec")]
    errors = [t for t in texts if t.split == "test" and t.error_flag]
    assert len(test) == len(errors) == 3
    for row, t in zip(test, errors, strict=True):
        assert (row["positive"], row["negative"]) == (t.corrected_sentence, t.error_sentence)
        # the anchor is the case without its wrong sentence: it holds neither of the two
        assert t.error_sentence not in row["anchor"] and t.corrected_sentence not in row["anchor"]
        assert len(row["anchor"]) > len(t.text) // 2
    skips = SkipLog()
    rows = medec.training_rows(texts, skips)[layout.TRIPLETS]
    assert [r["_group"] for r in rows] == [
        f"medec:{t.id}" for t in texts if t.split == "validation" and t.error_flag
    ]
    assert rows[0]["positive"] == "Culture tests indicate Trichomonas vaginalis."
    assert rows[0]["negative"] == "Culture tests indicate Neisseria gonorrhoeae."
    assert {r["source"] for r in rows} == {"medec"} and not skips.counts


def test_medec_target_is_the_lesser_of_ten_points_and_halfway() -> None:
    (target,) = EVAL_SETS["medec"].targets
    for base in (0.5, 0.7, 0.8, 0.85, 0.95):
        assert target.threshold(base) == pytest.approx(min(base + 0.10, base + (1 - base) / 2))
    assert Target("ndcg@10", 0.08, halfway_above=0.84).threshold(0.9) == pytest.approx(0.95)  # MedQuAD's


# --- the six in the build ---------------------------------------------------------------------------------
def test_the_six_are_registered_and_their_sets_declared() -> None:
    assert all(s in REGISTRY and s not in PENDING for s in SIX)
    # Appended after the older sources (older bytes kept); only sources added since follow them.
    at = REGISTRY.index(SIX[0])
    assert [s.folder for s in REGISTRY[at : at + 6]] == [s.folder for s in SIX] and at + 6 == LATER_AT
    assert list(EVAL_SETS)[-6:-1] == list(NEW_SETS) and list(EVAL_SETS)[-1] == "nfcorpus_dev"
    assert {EVAL_SETS[n].source for n in NEW_SETS} == {"laymaker", "mts_dialog", "k_qa", "medec"}
    assert medec.SOURCE.info.row_sources == ("medec",) and not k_qa.SOURCE.info.row_sources


def _six_excerpts(root: Path) -> tuple[Source, ...]:
    lay_excerpt(root / "laymaker")
    mts_excerpt(root / "mts_dialog")
    wiki_excerpt(root / "simplewiki_medical")
    kqa_excerpt(root / "k_qa")
    mediqa_excerpt(root / "mediqa2021")
    medec_excerpt(root / "medec")
    return pin_excerpts(root, SIX)


def test_a_build_of_the_six_writes_the_sets_and_trains_no_held_out_text(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    registry = _six_excerpts(root)
    prep = prepare.build(root, registry=registry)
    for name in NEW_SETS:
        parts = ("",) if EVAL_SETS[name].task == "triplets" else ("_queries", "_corpus", "_qrels")
        assert all(prep.sets[("test", name + p)] for p in parts), name
    records = {s.folder: s.read(root / s.folder, SkipLog()) for s in registry}
    assert not _held_texts(records) & _training_keys(prep.sets)
    assert prep.leakage_report["passed"]
    trained = Counter(r["source"] for (split, _), rows in prep.sets.items() if split != "test" for r in rows)
    assert set(trained) - {twins.SOURCE} == {r for s in SIX for r in s.info.row_sources}


def test_a_malformed_sentence_file_stops_the_build_nothing_written(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    registry = _six_excerpts(root)
    path = root / "medec" / medec.TEST
    path.write_text(path.read_text(encoding="utf-8").replace(",NA,NA,NA", ",NA,NA", 1), encoding="utf-8")
    registry = pins.repin(root, registry)
    with pytest.raises(DataError, match=r"TestSet-with-GroundTruth-and-ErrorType\.csv, line \d+: expected 9"):
        prepare.prepare(tmp_path / "prepared", registry=registry, root=root)
    assert not (tmp_path / "prepared").exists()


# --- the real files ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_sentence_sets_and_hold_out() -> None:
    """The sets' sizes on the real files (docs/data.md), and no held-out text in a build of the six."""
    prep = prepare.build(RAW, registry=SIX)
    sizes = {k[1]: len(v) for k, v in prep.sets.items() if k[0] == "test"}
    assert sizes == {
        "lay_to_clinical_queries": 135,
        "lay_to_clinical_corpus": 588,
        "lay_to_clinical_qrels": 135,
        "clinical_to_lay_queries": 128,
        "clinical_to_lay_corpus": 595,
        "clinical_to_lay_qrels": 135,
        "mts_dialog_queries": 312,
        "mts_dialog_corpus": 312,
        "mts_dialog_qrels": 312,
        "k_qa_queries": 201,
        "k_qa_corpus": 201,
        "k_qa_qrels": 201,
        "medec": 311,
    }
    records = {s.folder: s.read(RAW / s.folder, SkipLog()) for s in SIX}
    assert not _held_texts(records) & _training_keys(prep.sets)
    assert prep.leakage_report["passed"]
