"""LayMaker (Babylon Health): clinical-note sentences (MTSamples) and the lay rewrite a clinician wrote.

Two CSVs (UTF-8, CRLF, quoted fields, no final newline): ``test-set.csv`` (1,000 rows) and
``dev-set-(alpha).csv`` (250), header ``ID, ORIGINAL, REFERENCE`` then the outputs of automatic
simplification systems (noisy, some wrong; kept in the records, never paired). Pitfalls handled here:

- about half the rows were left unchanged ("could not be further simplified"): a REFERENCE equal to the
  ORIGINAL up to case, spacing, tokenisation and final punctuation is no pair (dropped, counted);
- the ORIGINAL side is word-tokenised ("Tinel 's test , it is negative .") and many REFERENCEs are not:
  both sides are detokenised (:func:`detokenize`) so that spacing is no cue to which side a text is;
- 89 ORIGINALs occur twice in the test file (one copy unchanged, one rewritten): :attr:`LayPair.unit` is
  the same for both, the unit a held-out split must use (no test sentence, or its other side, may train).

IDs restart at 1 in each file; a row's id is ``<file stem>:<ID>``.

Held out (:func:`held`): :data:`TEST_FRACTION` of the units, by hash of the unit id, every row of a unit
together. Their rewritten rows are two retrieval tests, ``lay_to_clinical`` (lay sentence -> its clinical
sentence) and ``clinical_to_lay`` (the reverse); both corpora add as distractors the sentences of the other
units that clinicians left as they were (such a sentence is both a clinical and a lay one, and, its unit
having no rewritten row, never trains as a LayMaker pair): without them a corpus of about 140 sentences is
too easy to show a gain. A held unit's rows never train.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, read_utf8, torn_last_line
from medenc.data.source import (
    Pin,
    Rows,
    Sets,
    Source,
    SourceInfo,
    TestYield,
    bucket,
    mark_distractors,
    query_sets,
    row,
)

TEST = "data/test-set.csv"
DEV = "data/dev-set-(alpha).csv"
HEADER = ("ID", "ORIGINAL", "REFERENCE")  # the first columns of both files; system outputs follow
# Fraction of units held out: about 136 of the 582 rewritten rows (both directions' queries).
TEST_FRACTION = 0.25

# Word-tokenised text (PTB style, as in MTSamples and the Wikipedia alignments) back to running text.
_OPEN_QUOTE = re.compile(r"``\s*")
_CLOSE_QUOTE = re.compile(r"\s*''")
_AFTER_OPEN = re.compile(r"([(\[{])\s+")
_BEFORE_CLOSE = re.compile(r"\s+(\.\.\.|[)\]}.,;:?!%])")
_CLITIC = re.compile(r"\s+('[sS]|n't|'re|'ve|'ll|'d|'m)\b")
_FINAL_PUNCT = re.compile(r"[\s.;:!?]+$")


def detokenize(text: str) -> str:
    """``"Tinel 's test ( left ) , negative ."`` -> ``"Tinel's test (left), negative."``."""
    out = _OPEN_QUOTE.sub('"', text.replace("\\/", "/"))
    out = _CLOSE_QUOTE.sub('"', out)
    out = _BEFORE_CLOSE.sub(r"\1", _AFTER_OPEN.sub(r"\1", out))
    return _CLITIC.sub(r"\1", out)


def same_sentence(a: str, b: str) -> bool:
    """Whether two sentences are equal up to case, spacing and final punctuation (no rewrite)."""
    return _FINAL_PUNCT.sub("", leakage.key(a)) == _FINAL_PUNCT.sub("", leakage.key(b))


def read_csv(path: Path, header: tuple[str, ...]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (first line, fields) of each record of a quoted UTF-8 CSV.

    The header must start with ``header``; every record must have as many fields as it. A quoted field
    left open, a short record and a file cut off in its last record are DataErrors naming the line.
    (Shared with the MTS-Dialog adapter; a candidate for :mod:`medenc.data.parsing`.)
    """
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            out.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(path, f"line {start}", "a well-formed quoted CSV record", str(e)) from e
    if not out or tuple(out[0][1][: len(header)]) != header:
        found = repr(out[0][1][: len(header)]) if out else "an empty file"
        raise DataError(path, "line 1", f"a header starting {', '.join(header)}", found)
    width = len(out[0][1])
    for n, fields in out[1:]:
        if len(fields) != width:
            if n == out[-1][0] and not text.endswith("\n") and len(fields) < width:
                raise torn_last_line(path, text, len(fields), f"{width} fields, as in the header")
            expected = f"{width} comma-separated fields ({', '.join(out[0][1])})"
            raise DataError(path, f"line {n}", expected, f"{len(fields)} field(s)")
    return out[0][1], out[1:]


@dataclass(frozen=True)
class LayPair:
    """One row: the clinical sentence, the clinicians' lay sentence, detokenised, and the systems' outputs."""

    id: str  # "<file stem>:<ID>" ("test-set:223")
    unit: str  # the id of the first row with the same ORIGINAL: the unit of a held-out split
    original: str
    reference: str
    systems: tuple[tuple[str, str], ...]  # (system, its simplification) as upstream, not detokenised
    line: int


def read_file(path: Path, units: dict[str, str]) -> list[LayPair]:
    """The rows of one LayMaker CSV; ``units`` (ORIGINAL key -> unit) is shared across the two files."""
    names, records = read_csv(path, HEADER)
    stem = path.name.removesuffix(".csv")
    out = []
    for n, f in records:
        where = f"line {n}"
        if not f[0].isdigit():
            raise DataError(path, f"{where}, column 1 (ID)", "a row number", repr(f[0]))
        original = detokenize(normalise(f[1], path, f"{where}, column 2 (ORIGINAL)"))
        reference = detokenize(normalise(f[2], path, f"{where}, column 3 (REFERENCE)"))
        rid = f"{stem}:{f[0]}"
        unit = units.setdefault(leakage.key(original), rid)
        out.append(LayPair(rid, unit, original, reference, tuple(zip(names[3:], f[3:], strict=True)), n))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[LayPair]:
    """The 1,250 rows: the test file's, then the dev file's."""
    units: dict[str, str] = {}
    return [p for rel in (TEST, DEV) for p in read_file(folder / rel, units)]


def held(unit: str) -> bool:
    """Whether a unit (the first row id of its ORIGINAL) is held out for the tests, all its rows together."""
    return bucket(f"laymaker-test:{unit}") < TEST_FRACTION


def build_test(pairs: list[LayPair]) -> Sets:
    """``lay_to_clinical`` and ``clinical_to_lay`` retrieval sets of the held units' rewritten rows.

    The corpus of each adds, as distractors (``_distractor``: no test text for the leakage checks), the
    sentence of every unit not held out whose rows are all unchanged.
    """
    tests = [p for p in pairs if held(p.unit) and not same_sentence(p.original, p.reference)]
    held_texts = [t for p in pairs if held(p.unit) for t in (p.original, p.reference)]
    rewritten = {p.unit for p in pairs if not same_sentence(p.original, p.reference)}
    others = [p.original for p in pairs if p.unit not in rewritten and not held(p.unit)]
    sets: Sets = {}
    for name, pick in (
        ("lay_to_clinical", lambda p: (p.reference, p.original)),
        ("clinical_to_lay", lambda p: (p.original, p.reference)),
    ):
        queries = [(p.id, *pick(p)) for p in tests]
        got, _ = query_sets(name, queries, [a for _, _, a in queries] + others, "s")
        sets.update(mark_distractors(got, name, held_texts))
    return sets


def test_sets(pairs: list[LayPair]) -> TestYield:
    """The two held-out retrieval sets."""
    return TestYield(sets=build_test(pairs))


def training_rows(pairs: list[LayPair], skips: SkipLog) -> Rows:
    """(clinical sentence -> lay sentence) pairs of the rewritten rows of the units not held out; the
    validation unit is ``unit``."""
    out = []
    for p in pairs:
        if held(p.unit):
            continue
        if same_sentence(p.original, p.reference):
            skips.add("laymaker: lay sentence same as the clinical one (not rewritten)")
            continue
        out.append(row(layout.PAIRS, "laymaker", p.unit, p.original, p.reference))
    return {layout.PAIRS: out}


def manifest_info(pairs: list[LayPair]) -> dict[str, object]:
    """The manifest's LayMaker counts."""
    return {
        "laymaker_rows": len(pairs),
        "laymaker_rewritten": sum(not same_sentence(p.original, p.reference) for p in pairs),
        "laymaker_units": len({p.unit for p in pairs}),
        "laymaker_test_units": len({p.unit for p in pairs if held(p.unit)}),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="laymaker",
        row_sources=("laymaker",),
        name="LayMaker (clinician-simplified MTSamples sentences)",
        license="CC BY 4.0",
        role="train+validation: pairs (clinical sentence->lay sentence); test: lay<->clinical retrieval "
        "(held out by sentence)",
        url="https://github.com/babylonhealth/laymaker",
        commit="71db265fc5fecf75c91b03c15d6f19862b4510ba",
        attribution="Babylon Health, Towards more patient friendly clinical notes through language models "
        "and ontologies, AMIA Annual Symposium 2021",
        bibtex="""@inproceedings{moramarco2021laymaker,
  title = {Towards more patient friendly clinical notes through language models and ontologies},
  author = {Moramarco, Francesco and Juric, Damir and Savkov, Aleksandar and Flann, Jack and Lehl, Maria and
    Boda, Kristian and Grafen, Tessa and Zhelezniak, Vitalii and Gohil, Sunir and
    Papadopoulos Korfiatis, Alex and Hammerla, Nils},
  booktitle = {AMIA Annual Symposium Proceedings},
  volume = {2021},
  pages = {881--890},
  year = {2021},
  url = {https://github.com/babylonhealth/laymaker}
}""",
    ),
    files=(TEST, DEV),
    # @ 71db265fc5fe
    pins={
        DEV: Pin("9c2c8643813853c67787f7f2e54f45f1fc19cf6d69f92d4bc3bf2da444e992a8", 251),
        TEST: Pin("18ca18da2257eb0223d19349684a000dceafa8b21643ec35e7625838890d7ab1", 1001),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="sentences",
)
