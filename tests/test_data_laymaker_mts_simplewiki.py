"""Tests of three sentence sources (LayMaker, MTS-Dialog, Simple Wikipedia medical), in the build (issue 30).

Each adapter reads a small excerpt of the real files (records copied from them into ``tmp_path``: no data
file is committed) and a malformed copy; the counts on the real files; and a build whose registry holds
the three. Their held-out sets: tests/test_data_sentence_sets.py; the excerpts: tests/fakes.py.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest
from fakes import (
    RAW,
    build_from_excerpts,
    lay_excerpt,
    mts_excerpt,
    needs_raw,
    rows_by_source,
    wiki_excerpt,
)

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import pins
from medenc.data.parsing import SkipLog
from medenc.data.source import Source
from medenc.data.sources import PENDING, REGISTRY, laymaker, mts_dialog, simplewiki_medical

MINE: tuple[Source, ...] = (laymaker.SOURCE, mts_dialog.SOURCE, simplewiki_medical.SOURCE)
pytestmark = needs_raw(MINE, "raw sentence sources")


# --- each adapter on an excerpt of the real files ---------------------------------------------------------
def _pairs(source: Source, folder: Path) -> tuple[list[dict], SkipLog]:
    skips = SkipLog()
    rows = source.training_rows(source.read(folder, skips), skips)  # type: ignore[misc]
    assert set(rows) == {layout.PAIRS}
    return rows[layout.PAIRS], skips


def test_laymaker_excerpt(tmp_path: Path) -> None:
    folder = lay_excerpt(tmp_path / "laymaker")
    records = {p.id: p for p in laymaker.read(folder)}
    assert len(records) == 8
    # the ORIGINAL is word-tokenised upstream: detokenised
    assert records["test-set:4"].original.startswith("Tinel's test was tested at the elbow, it is negative")
    assert records["test-set:4"].systems[0][0] == "REDDIT-NGRAM" and len(records["test-set:4"].systems) == 6
    # the same ORIGINAL twice: one unit for a held-out split
    assert records["test-set:676"].unit == records["test-set:223"].unit == "test-set:223"
    rows, skips = _pairs(laymaker.SOURCE, folder)
    got = {(r["anchor"], r["positive"]) for r in rows}
    assert ("We irrigated thoroughly.", "We washed out thoroughly.") not in got  # ID 16 is not in the excerpt
    assert not any("anhedonic" in a for a, _ in got)  # test-set:8 is held out for the test
    assert (
        "She was awake and moving extremities well.",
        "She was awake and moving hands and feet well",
    ) in got
    assert all(not laymaker.same_sentence(a, b) for a, b in got)
    assert skips.counts["laymaker: lay sentence same as the clinical one (not rewritten)"] >= 2
    assert {r["_group"] for r in rows if "extremities" in r["anchor"]} == {"laymaker:test-set:223"}


def test_detokenize() -> None:
    text = "The lack ( 8,000 ft ) can cause `` dry '' skin , he does n't say ; it 's \\/ ok ."
    assert (
        laymaker.detokenize(text) == "The lack (8,000 ft) can cause \"dry\" skin, he doesn't say; it's / ok."
    )


def test_mts_dialog_excerpt(tmp_path: Path) -> None:
    folder = mts_excerpt(tmp_path / "mts_dialog")
    records = mts_dialog.read(folder)
    assert {k: len(v) for k, v in records.items()} == {
        "train": 4,
        "validation": 2,
        "test1": 2,
        "test2": 2,
        "augmented": 12,
    }
    assert "\n" not in records["train"][0].dialogue and records["train"][0].dialogue.startswith("Doctor: ")
    rows, skips = _pairs(mts_dialog.SOURCE, folder)
    by = Counter(r["source"] for r in rows)
    assert by == {"mts_dialog": 3, "mts_dialog_augmented": 5}  # 19 ("None." again) and its two dropped
    assert skips.counts == {
        "mts_dialog: section text repeated (generic, e.g. 'None.')": 1,
        "mts_dialog_augmented: copy of a training-set pair": 4,
        "mts_dialog_augmented: back-translation of a dropped pair (repeated section)": 2,
        "mts_dialog_augmented: back-translated dialogue same as the original": 1,
    }
    # the held-out test sets (and validation) never train
    held = {e.dialogue for s in ("test1", "test2", "validation") for e in records[s]}
    assert not held & {r["anchor"] for r in rows}
    # a back-translation validates with its original
    groups = {r["_group"] for r in rows if r["source"] == "mts_dialog_augmented"}
    assert groups <= {r["_group"] for r in rows if r["source"] == "mts_dialog"}


def test_simplewiki_excerpt(tmp_path: Path) -> None:
    folder = wiki_excerpt(tmp_path / "simplewiki_medical")
    records = simplewiki_medical.read(folder)
    # 5 first lines each, and 2 with identical sides where the file has some (not the partial alignments)
    sizes = {k: len(v) for k, v in records.items()}
    assert sizes == {**dict.fromkeys(simplewiki_medical.FIELDS, 7), simplewiki_medical.EXPERT_PARTIAL: 5}
    assert all(p.score is not None for p in records[simplewiki_medical.AUTOMATIC])
    rows, skips = _pairs(simplewiki_medical.SOURCE, folder)
    same = skips.counts["simplewiki_medical: simple sentence same as the Wikipedia one"]
    assert same >= 2 and len(rows) + same == 7 and {r["source"] for r in rows} == {"simplewiki_medical"}
    assert rows[1]["anchor"].startswith("The lack of oxygen above 2,400 metres (8,000 ft) can cause")
    expert = {(p.source, p.target) for p in records[simplewiki_medical.EXPERT_FULL]}
    assert {(r["anchor"], r["positive"]) for r in rows} <= expert  # only the expert fully aligned file


# --- malformed copies: the file, the line and what was expected -------------------------------------------
def test_laymaker_malformed(tmp_path: Path) -> None:
    folder = lay_excerpt(tmp_path / "laymaker")
    path = folder / laymaker.TEST
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\r\n")
    cut = lines[1].rsplit(",", 1)[0]  # line 2 (ID 1, no quotes) loses its last field
    path.write_text("\r\n".join([lines[0], cut, *lines[2:]]), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"test-set\.csv, line 2: expected 9 comma-separated fields \(ID,"):
        laymaker.read(folder)
    path.write_text(text[: text.rindex(",")], encoding="utf-8", newline="")  # cut off in the last row
    with pytest.raises(DataError, match=rf"line {len(lines)} \(the last\): expected 9 fields"):
        laymaker.read(folder)
    opened = [lines[0], lines[1].replace(",", ',"', 1), *lines[2:]]  # line 2: a quote left open
    path.write_text("\r\n".join(opened), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"test-set\.csv, line 2: expected a well-formed quoted CSV record"):
        laymaker.read(folder)
    path.write_text(text.replace("ID,ORIGINAL", "ID,SOURCE"), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"line 1: expected a header starting ID, ORIGINAL, REFERENCE"):
        laymaker.read(folder)


def test_mts_dialog_malformed(tmp_path: Path) -> None:
    folder = mts_excerpt(tmp_path / "mts_dialog")
    path = folder / mts_dialog.TEST1
    text = path.read_bytes().decode("utf-8")
    second = laymaker.read_csv(path, mts_dialog.HEADER)[1][1][0]  # the last record's first line
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].replace("0,", "0,OPINION,", 1)  # line 2 (ID 0): 5 fields
    path.write_text("".join(lines), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=r"TestSet-1-MEDIQA-Chat-2023\.csv, line 2: expected 4 comma-sep"):
        mts_dialog.read(folder)
    lines[1] = lines[1].replace("0,OPINION,", "0,", 1)
    lines[second - 1] = lines[second - 1].replace(",", ",OPINION", 1)  # an unknown section header
    path.write_text("".join(lines), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=rf"line {second}, column 2 \(section_header\): expected one of"):
        mts_dialog.read(folder)
    path.write_text(text[: len(text) - 40], encoding="utf-8", newline="")  # cut off inside the dialogue
    with pytest.raises(
        DataError, match=rf"line {second}: expected a well-formed quoted CSV record, found unexp"
    ):
        mts_dialog.read(folder)


def test_simplewiki_malformed(tmp_path: Path) -> None:
    folder = wiki_excerpt(tmp_path / "simplewiki_medical")
    path = folder / simplewiki_medical.EXPERT_FULL
    good = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    data = [*good[:2], good[2].replace("\t", " "), *good[3:]]
    path.write_bytes(gzip.compress("\n".join(data).encode("utf-8")))
    with pytest.raises(DataError, match=r"expert_fully_aligned\.txt\.gz, line 3: expected 2 tab-separated"):
        simplewiki_medical.read(folder)
    whole = gzip.compress("\n".join(data).encode("utf-8"))
    path.write_bytes(whole[: len(whole) // 2])  # a download cut off
    with pytest.raises(DataError, match=r"expert_fully_aligned\.txt\.gz, line \d+: expected an intact gzip"):
        simplewiki_medical.read(folder)
    path.write_bytes(gzip.compress("\n".join(good).rstrip("\n").encode("utf-8")))
    with pytest.raises(DataError, match=r"line 7 \(the last\): expected a final newline"):
        simplewiki_medical.read(folder)


# --- the real files ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_sentence_source_counts() -> None:
    """What each adapter yields on the real files (docs/data.md, "Prepared, not yet in the build")."""
    yields = {}
    for source in MINE:
        skips = SkipLog()
        records = source.read(RAW / source.folder, skips)
        rows = source.training_rows(records, skips)  # type: ignore[misc]
        yields[source.folder] = (records, Counter(r["source"] for r in rows[layout.PAIRS]), skips.counts)
    lay, lay_rows, lay_skips = yields["laymaker"]
    # 582 rows are rewritten; 136 of them in held-out units (the test), 446 train
    assert len(lay) == 1250 and len({p.unit for p in lay}) == 1161 and lay_rows == {"laymaker": 446}
    assert sum(lay_skips.values()) == 504  # the not-rewritten rows of the units not held out
    mts, mts_rows, mts_skips = yields["mts_dialog"]
    assert {k: len(v) for k, v in mts.items()} == {
        "train": 1201,
        "validation": 100,
        "test1": 200,
        "test2": 200,
        "augmented": 3603,
    }
    assert mts_rows == {"mts_dialog": 1068, "mts_dialog_augmented": 2095}
    assert mts_skips["mts_dialog: section text repeated (generic, e.g. 'None.')"] == 133
    assert sum(mts_skips.values()) == 133 + 1201 + 266 + 41
    wiki, wiki_rows, wiki_skips = yields["simplewiki_medical"]
    assert [len(v) for v in wiki.values()] == [2267, 3148, 3797] and wiki_rows == {"simplewiki_medical": 1937}
    assert wiki_skips == {"simplewiki_medical: simple sentence same as the Wikipedia one": 330}


def test_sentence_sources_are_registered_and_pinned() -> None:
    """In the build (issue 30), no longer pending; pins those of the files."""
    assert all(s in REGISTRY for s in MINE)
    assert not {s.folder for s in MINE} & {s.folder for s in PENDING}
    for source in MINE:
        assert source.info.row_sources and source.info.role.startswith("train"), source.folder
        assert source.info.commit and source.info.url.startswith("https://github.com/"), source.folder
    assert simplewiki_medical.SOURCE.info.license == "CC BY-SA 3.0"
    assert pins.pins_of(MINE).differences(pins.hash_raw_files(RAW, MINE)) == {}
    assert [s.pins for s in pins.repin(RAW, MINE)] == [dict(sorted(s.pins.items())) for s in MINE]


# --- through the build ------------------------------------------------------------------------------------
def test_the_sentence_sources_flow_into_the_build(tmp_path: Path) -> None:
    """A build whose registry holds the three (excerpts, pinned as they are) writes their rows and counts."""
    root = tmp_path / "raw"
    lay_excerpt(root / "laymaker")
    mts_excerpt(root / "mts_dialog")
    wiki_excerpt(root / "simplewiki_medical")
    _, manifest, _ = build_from_excerpts(tmp_path, MINE)
    assert set(rows_by_source(manifest)) == {r for s in MINE for r in s.info.row_sources}
    assert set(manifest["sources"]) == {s.folder for s in MINE}
    assert manifest["sources"]["simplewiki_medical"]["license"] == "CC BY-SA 3.0"
    assert manifest["info"]["mts_dialog_test1_pairs"] == 2 and manifest["info"]["laymaker_rows"] == 8
    assert manifest["leakage"]["passed"]
