"""Tests of the name sources (ICD-10-CM, WordNet, FDA UNII), in the build since the names round.

Each adapter reads a small excerpt of the real file (lines copied from it into ``tmp_path``: no data file is
committed) and a malformed copy; the counts on the real files; and a build whose registry holds the three.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from fakes import RAW, build_from_excerpts, needs_raw, pin_excerpts, rows_by_source

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import pins, prepare
from medenc.data.parsing import SkipLog
from medenc.data.source import Source
from medenc.data.sources import PENDING, REGISTRY, fda_unii, icd10cm, wordnet

# The name sources, in REGISTRY (their held-out sets: tests/test_data.py, tests/test_concept_groups.py).
NAMES = (icd10cm.SOURCE, wordnet.SOURCE, fda_unii.SOURCE)

pytestmark = needs_raw(NAMES, "raw name sources")

ICD_SECTIONS = ("D80-D89", "I10-I1A", "R50-R69")  # immunodeficiencies [IgM], hypertension, fever [FUO]
# Synsets of the WordNet excerpt, by their first word and gloss start: medical ones, and one of each kind
# that must be left out (animal anatomy by lexicographer file and by gloss, a drink, tobacco).
WN_PICKS = (
    ("high blood pressure", "a common disorder"),
    ("influenza", "an acute febrile"),
    ("myocardial infarction", "destruction of heart"),
    ("elbow", "hinge joint"),
    ("acetaminophen", "an analgesic"),
    ("fluke", "either of the two lobes"),  # noun.animal
    ("keel", "the median ridge"),  # noun.body, gloss about birds
    ("punch", "an iced mixed drink"),  # noun.food below "drug of abuse"
    ("cigar", "a roll of tobacco"),  # tobacco
)
UNII_PICKS = {
    "UTI8907Y6X": "sertraline hydrochloride (Zoloft)",
    "WK2XYI10QM": "ibuprofen (Advil)",
    "0020414E5U": "minocycline hydrochloride",
    "XF48685MYR": "ethinyl estradiol 3-isopropylsulfonate: a chemical name (Turisteron)",
    "002FR4N8OV": "laureth-15: a cosmetic, no drug compendium name",
}


# --- excerpts of the real files -------------------------------------------------------------------------
def _icd_excerpt(folder: Path) -> Path:
    """The tabular list's root with the chapter and section elements of ICD_SECTIONS, lines copied as is."""
    lines = (RAW / "icd10cm" / icd10cm.XML).read_text(encoding="utf-8").splitlines(keepends=True)
    out = [*lines[:2]]  # the XML declaration and <ICD10CM.tabular>
    for section in ICD_SECTIONS:
        start = next(i for i, ln in enumerate(lines) if f'<section id="{section}">' in ln)
        end = next(i for i in range(start, len(lines)) if "</section>" in lines[i])
        out += ["  <chapter>\n", "    <name>excerpt</name>\n", *lines[start : end + 1], "  </chapter>\n"]
    out.append("</ICD10CM.tabular>\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / icd10cm.XML).write_text("".join(out), encoding="utf-8")
    return folder


def _wordnet_excerpt(folder: Path) -> Path:
    """data.noun's licence header and the lines of WN_PICKS, the roots and every hypernym above them."""
    path = RAW / "wordnet" / wordnet.DATA_NOUN
    entries = wordnet.read_entries(path)
    keep = set(wordnet.ROOTS) | set(wordnet.NOT_MEDICAL_SUBTREES)
    for word, gloss in WN_PICKS:
        keep |= {o for o, e in entries.items() if e.words[0] == word and e.gloss.startswith(gloss)}
    assert len(keep) >= len(WN_PICKS) + len(wordnet.ROOTS), "a WordNet pick is not in data.noun"
    stack = list(keep)
    while stack:  # their hypernyms, so that the walk from a root reaches them as in the full file
        stack += [h for h in entries[stack.pop()].hypernyms if h not in keep and not keep.add(h)]
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = [ln for ln in text if ln.startswith("  ") or ln[:8] in keep]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / wordnet.DATA_NOUN).write_text("".join(out), encoding="utf-8", newline="")
    (folder / wordnet.LICENSE).write_bytes((RAW / "wordnet" / wordnet.LICENSE).read_bytes())
    return folder


def _unii_excerpt(folder: Path) -> Path:
    """UNII_Names.txt's header and every line of the UNII_PICKS substances, as is (CRLF kept)."""
    out = []
    with (RAW / "fda_unii" / fda_unii.NAMES).open(encoding="utf-8", newline="") as fh:
        for n, line in enumerate(fh):
            if n == 0 or line.split("\t")[2] in UNII_PICKS:
                out.append(line)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / fda_unii.NAMES).write_text("".join(out), encoding="utf-8", newline="")
    return folder


def _pairs(source: Source, folder: Path) -> tuple[set[tuple[str, str, str]], SkipLog]:
    """(row source, anchor, positive) of a source's rows on ``folder``, and what it skipped."""
    skips = SkipLog()
    rows = source.training_rows(source.read(folder, skips), skips)  # type: ignore[misc]
    assert set(rows) <= {layout.PAIRS, layout.TRIPLETS}
    return {(r["source"], r["anchor"], r["positive"]) for r in rows[layout.PAIRS]}, skips


def test_icd10cm_excerpt(tmp_path: Path) -> None:
    folder = _icd_excerpt(tmp_path / "icd10cm")
    codes = icd10cm.read(folder)
    by_code = {c.code: c for c in codes}
    i10 = by_code["I10"]
    assert (i10.title, i10.name) == ("Essential (primary) hypertension", "Essential hypertension")
    # "hypertension (arterial) (benign) ..." is "hypertension": the parenthesised words are modifiers
    assert i10.other_names == ("high blood pressure", "hypertension")
    assert i10.excludes1 and "(O10-O11, O13-O16)" in i10.excludes1[0]  # kept for near-miss negatives
    assert by_code["I11.0"].parent == "I11" and "I10" in icd10cm.siblings(codes)["I11"]
    pairs, skips = _pairs(icd10cm.SOURCE, folder)
    assert ("icd10_inclusion", "high blood pressure", "Essential hypertension") in pairs
    assert ("icd10_inclusion", "Pyrexia", "Fever, unspecified") in pairs
    assert ("icd10_abbreviation", "FUO", "Fever of unknown origin") in pairs  # a note's [FUO]
    assert (
        "icd10_abbreviation",
        "Selective deficiency of IgM",
        "Selective deficiency of immunoglobulin M",
    ) in pairs
    # Near misses: an excluded condition where the code has one, else the sibling sharing the most words.
    near = {(r["anchor"], r["negative"]) for r in icd10cm.training_rows(codes, skips)[layout.TRIPLETS]}
    assert (
        "high blood pressure",
        "hypertensive disease complicating pregnancy, childbirth and the puerperium",
    ) in near
    assert all(n not in (a, by_code["I10"].name) for a, n in near)
    sibs = icd10cm.siblings(codes)
    # no excludes1: the most alike sibling ("Fever presenting with conditions classified elsewhere" shares
    # most with "Fever, unspecified"), and none when no sibling is alike enough
    assert icd10cm.near_miss(by_code["R50.9"], by_code, sibs) in {by_code[s].name for s in sibs["R50.9"]}
    # I11's "any condition in I50.- or I51.4-I51.7 ... due to hypertension" points at codes: dropped, counted
    assert skips.counts["icd10cm: inclusion note dropped (code or code range)"] >= 1
    assert not any("I50" in a or "NOS" in a.split() or "(" in a for _, a, _ in pairs)


def test_wordnet_excerpt(tmp_path: Path) -> None:
    folder = _wordnet_excerpt(tmp_path / "wordnet")
    synsets = {s.words[0]: s for s in wordnet.read(folder)}
    assert {"high blood pressure", "influenza", "myocardial infarction", "elbow", "acetaminophen"} <= set(
        synsets
    )
    assert synsets["high blood pressure"].family == "disease" and synsets["elbow"].family == "body part"
    assert not {"fluke", "keel", "punch", "cigar"} & set(synsets)  # animal, animal gloss, drink, tobacco
    pairs, skips = _pairs(wordnet.SOURCE, folder)
    assert ("wordnet_synonym", "high blood pressure", "hypertension") in pairs
    assert ("wordnet_synonym", "influenza", "flu") in pairs
    assert ("wordnet_synonym", "myocardial infarction", "MI") in pairs
    assert ("wordnet_synonym", "acetaminophen", "Tylenol") in pairs
    gloss = synsets["high blood pressure"].gloss
    assert ("wordnet_gloss", gloss, "high blood pressure") in pairs and '"' not in gloss  # examples cut off
    left_out = {k.split("(", 1)[1] for k in skips.counts}
    assert {"not human medicine (noun.animal))", "not human medicine (noun.food))"} <= left_out
    assert {"not medicine (tobacco))", "animal anatomy (the gloss names only animals))"} <= left_out


def test_fda_unii_excerpt(tmp_path: Path) -> None:
    folder = _unii_excerpt(tmp_path / "fda_unii")
    drugs = {d.unii: d for d in fda_unii.read(folder)}
    assert set(drugs) == {"UTI8907Y6X", "WK2XYI10QM", "0020414E5U"}  # no chemical name, no cosmetic
    assert drugs["UTI8907Y6X"].generic == "sertraline hydrochloride"
    pairs, skips = _pairs(fda_unii.SOURCE, folder)
    assert ("fda_brand", "Zoloft", "sertraline hydrochloride") in pairs
    assert ("fda_brand", "Advil", "ibuprofen") in pairs
    assert ("fda_brand", "Minocin", "minocycline hydrochloride") in pairs
    assert all(b[:1].isupper() and not b.isupper() and g == g.lower() for _, b, g in pairs)
    assert skips.counts["fda_unii: brand of a substance that is not a drug (no compendium name)"] >= 1
    assert skips.counts["fda_unii: brand of a substance with a chemical or systematic name"] >= 1


def test_brand_case() -> None:
    assert [fda_unii.brand_case(b) for b in ("ZOLOFT", "K-DUR", "DOAN'S PILLS")] == [
        "Zoloft",
        "K-Dur",
        "Doan's Pills",
    ]


# --- malformed copies: the file, the line and what was expected -------------------------------------------
def test_icd10cm_torn_and_malformed(tmp_path: Path) -> None:
    path = _icd_excerpt(tmp_path / "icd10cm") / icd10cm.XML
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # a copy cut off mid-file
    with pytest.raises(
        DataError, match=r"icd10c-tabular-April-1-2026\.xml, line \d+, column \d+: expected well-formed XML"
    ):
        icd10cm.read(path.parent)
    path.write_text(text.replace("<desc>Essential (primary) hypertension</desc>", "", 1), encoding="utf-8")
    with pytest.raises(DataError, match=r"<diag> #\d+ after \S+ \(I10\): expected a <desc> \(the title\)"):
        icd10cm.read(path.parent)
    # An entity-expansion bomb is refused by expat, not expanded.
    lol = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    path.write_text(f"<?xml version='1.0'?><!DOCTYPE x [{lol}]><ICD10CM.tabular>&a9;</ICD10CM.tabular>")
    with pytest.raises(DataError, match="well-formed XML, found limit on input amplification"):
        icd10cm.read(path.parent)


def test_wordnet_malformed(tmp_path: Path) -> None:
    path = _wordnet_excerpt(tmp_path / "wordnet") / wordnet.DATA_NOUN
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if not ln.startswith("  ")) + 3
    path.write_text(
        "".join([*lines[: n - 1], lines[n - 1].replace(" | ", " "), *lines[n:]]), encoding="utf-8"
    )
    with pytest.raises(DataError, match=rf"data\.noun, line {n}: expected a synset line"):
        wordnet.read(path.parent)
    path.write_text("".join(lines)[:-20], encoding="utf-8")  # cut off in the last line
    with pytest.raises(
        DataError, match=rf"data\.noun, line {len(lines)} \(the last\): expected a final newline"
    ):
        wordnet.read(path.parent)


def test_fda_unii_malformed(tmp_path: Path) -> None:
    path = _unii_excerpt(tmp_path / "fda_unii") / fda_unii.NAMES
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = lines[3].split("\t")
    path.write_text("".join([*lines[:3], "\t".join(cut[:2] + cut[3:]), *lines[4:]]), encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"UNII_Names\.txt, line 4: expected 4 tab-separated fields \(Name, TYPE, UNII, Display Name\)",
    ):
        fda_unii.read(path.parent)
    path.write_text("".join(lines).rstrip("\r\n"), encoding="utf-8", newline="")
    with pytest.raises(DataError, match=rf"line {len(lines)} \(the last\): expected a final newline"):
        fda_unii.read(path.parent)


def test_a_malformed_name_source_writes_nothing(tmp_path: Path) -> None:
    """A torn file (pinned as it is: parsing, not the pin check, meets it) stops the build unwritten."""
    root = tmp_path / "raw"
    _icd_excerpt(root / "icd10cm")
    path = root / "icd10cm" / icd10cm.XML
    path.write_text(path.read_text(encoding="utf-8")[:5000], encoding="utf-8")
    target = tmp_path / "prepared"
    with pytest.raises(DataError, match="well-formed XML"):
        prepare.prepare(target, registry=pin_excerpts(root, (icd10cm.SOURCE,)), root=root)
    assert not target.exists()


# --- the real files ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_name_source_counts() -> None:
    """What each adapter yields on the real files (docs/data.md, "Prepared, not yet in the build")."""
    yields = {}
    for source in NAMES:
        skips = SkipLog()
        records = source.read(RAW / source.folder, skips)
        rows = source.training_rows(records, skips)  # type: ignore[misc]
        yields[source.folder] = (len(records), Counter(r["source"] for r in rows[layout.PAIRS]), skips.counts)
    codes, icd_rows, icd_skips = yields["icd10cm"]
    assert codes == 46881 and icd_rows == {"icd10_inclusion": 13222, "icd10_abbreviation": 229}
    assert icd_skips["icd10cm: inclusion note dropped (classifiable to)"] == 145
    synsets, wn_rows, wn_skips = yields["wordnet"]
    assert synsets == 4315 and wn_rows == {"wordnet_synonym": 6413, "wordnet_gloss": 4315}
    assert wn_skips["wordnet: synset left out (not human medicine (noun.animal))"] == 209
    drugs, fda_rows, fda_skips = yields["fda_unii"]
    assert drugs == 4626 and fda_rows == {"fda_brand": 9990}
    # every one of the 23,644 brand rows is either a pair or counted as left out
    assert sum(fda_rows.values()) + sum(fda_skips.values()) == 23644


def test_name_sources_are_registered_and_pinned() -> None:
    """The three are in the build, each with its files, pins, rows and concept names for the hold-out."""
    assert all(s in REGISTRY for s in NAMES) and not {s.folder for s in NAMES} & {s.folder for s in PENDING}
    for source in NAMES:
        assert source.files and source.pins and source.training_rows is not None, source.folder
        assert source.info.row_sources and source.info.role.startswith("train"), source.folder
        assert source.concept_names is not None, source.folder
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in wordnet.SOURCE.info.attribution
    # The pins are those of the files as they are (what `prepare_data.py --print-pins` prints).
    assert pins.pins_of(NAMES).differences(pins.hash_raw_files(RAW, NAMES)) == {}
    assert {k: p.count for k, p in pins.repin(RAW, NAMES)[0].pins.items()} == {icd10cm.XML: 243833}


# --- through the build ------------------------------------------------------------------------------------
def test_the_name_sources_flow_into_candidates_and_the_manifest(tmp_path: Path) -> None:
    """A build whose registry holds the three (excerpts, pinned as they are) writes their rows and counts."""
    root = tmp_path / "raw"
    _icd_excerpt(root / "icd10cm")
    _wordnet_excerpt(root / "wordnet")
    _unii_excerpt(root / "fda_unii")
    path, manifest, registry = build_from_excerpts(tmp_path, NAMES)
    rows = rows_by_source(manifest, (layout.PAIRS, layout.TRIPLETS))
    wanted = {r for s in NAMES for r in s.info.row_sources}
    assert wanted <= set(rows), wanted - set(rows)
    assert set(manifest["sources"]) == {"icd10cm", "wordnet", "fda_unii"}
    assert manifest["sources"]["wordnet"]["license"] == wordnet.SOURCE.info.license
    assert manifest["raw_files_sha256"]["wordnet/LICENSE"] == registry[1].pins["LICENSE"].sha256
    assert manifest["info"]["icd10cm_codes"] > 0 and manifest["info"]["fda_unii_branded_drugs"] == 3
    skipped = manifest["dropped"]["skipped upstream quirks"]
    assert skipped["wordnet: synset left out (not human medicine (noun.animal))"] >= 1
    assert skipped["icd10cm: inclusion note dropped (code or code range)"] >= 1
    assert manifest["leakage"]["passed"] and (path / "train" / "pairs" / "dataset_info.json").is_file()
    assert dataclasses.replace(registry[0], pins=icd10cm.SOURCE.pins) == icd10cm.SOURCE
