"""MEDEC-MS: clinical texts (MedQA vignettes) with one wrong medical fact, each beside its correction.

Two CSVs (header :data:`HEADER`; quoted fields with line breaks inside): the MS validation set (574 texts,
319 with an error; LF inside fields, CRLF after each row, no final newline) and the MS test set (925 rows,
CRLF: 597 texts, 311 with an error, and 328 empty rows where the withheld UW test texts would be, skipped and
counted). The upstream training file (2,189 texts) is not in this copy.

Each record (:class:`MedecText`) holds one text: its id, ``split`` (``"validation"`` or ``"test"``, upstream's
names), the error flag, and where the flag is 1 the error type (:data:`ERROR_TYPES`), the index of the wrong
sentence, the erroneous sentence and its corrected sentence: two sentences one medical fact apart ("Culture
tests indicate Neisseria gonorrhoeae." / "... Trichomonas vaginalis."), for the near-miss test and curated
hard negatives. An error-free text (flag 0) often is the same vignette as the error text before it (ms-val-0
and ms-val-1): a split must keep the two together, so the split is upstream's: the test texts are held out,
the validation texts train.

The near-miss triplet (:func:`triplet`): anchor = the text without its wrong sentence (the case: history,
findings, results), positive = the corrected sentence, negative = the erroneous one. SOURCE.txt asks the
corrected sentence to sit closer to "a paraphrase of itself" than to the erroneous one, but the files hold no
paraphrase; the one text that states the true fact's evidence is the rest of the case, which implies the
corrected sentence and contradicts the erroneous one (the error was planted to contradict it). It holds
neither sentence, so no shared wording tells them apart: only the one fact. The error-free twin texts are
not used (their case is the same, and their corrected sentence is the positive already). Test: the
``medec`` triplets set (the test file's error texts); training: the same triplets of the validation file
(``medec``, phase-3 curated hard negatives).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, read_utf8
from medenc.data.source import Pin, Rows, Source, SourceInfo, TestYield, row

VALIDATION = "MEDEC-MS/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"
TEST = "MEDEC-MS/MEDEC-MS-TestSet-with-GroundTruth-and-ErrorType.csv"
SPLITS = {"validation": VALIDATION, "test": TEST}
HEADER = (
    "Text ID",
    "Text",
    "Sentences",
    "Error Flag",
    "Error Type",
    "Error Sentence ID",
    "Error Sentence",
    "Corrected Sentence",
    "Corrected Text",
)
ERROR_TYPES = frozenset({"diagnosis", "management", "treatment", "pharmacotherapy", "causalOrganism"})
TEST_SPLIT = "test"  # upstream's test file is held out; its validation file trains


@dataclass(frozen=True)
class MedecText:
    """One MEDEC text; the error fields are None where ``error_flag`` is 0 (upstream writes ``NA``)."""

    id: str  # "ms-val-0"
    split: str  # "validation" or "test"
    text: str
    error_flag: int
    error_type: str | None = None
    sentence_id: int | None = None  # index of the wrong sentence in the text's numbered Sentences
    error_sentence: str | None = None
    corrected_sentence: str | None = None


def read_csv(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """(first line number, fields) of each row of a quoted CSV with ``header``, every row ``len(header)``
    fields; a quote left open (a cut-off copy) or a short row is a DataError naming the line."""
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, line = [], 1
    try:
        for fields in reader:
            rows.append((line, fields))
            line = reader.line_num + 1
    except csv.Error as e:
        where = f"line {line} (the row starting there)"
        expected = "a well-formed CSV row (every quote closed)"
        raise DataError(path, where, expected, f"{e}: the file looks cut off") from None
    if not rows or tuple(rows[0][1]) != header:
        found = repr(rows[0][1] if rows else "an empty file")
        raise DataError(path, "line 1", f"the header {', '.join(header)}", found)
    for n, fields in rows:
        if len(fields) != len(header):
            raise DataError(path, f"line {n}", f"{len(header)} comma-separated fields", f"{len(fields)}")
    return rows[1:]


def _text(fields: list[str], split: str, path: Path, n: int) -> MedecText:
    """One row as a :class:`MedecText`; a flag, type or sentence that is not upstream's is a DataError."""
    tid, text, _, flag, kind, sid, wrong, right, _ = fields
    where = f"line {n} ({tid or 'no Text ID'})"
    text = normalise(text, path, f"{where}, column Text")
    if flag == "0" and (kind, sid, wrong, right) == ("NA", "-1", "NA", "NA"):
        return MedecText(tid, split, text, 0)
    if flag != "1" or kind not in ERROR_TYPES or not sid.isdigit():
        expected = (
            f"Error Flag 0 (with NA, -1, NA, NA) or 1 with an Error Type ({', '.join(sorted(ERROR_TYPES))}) "
            "and a sentence number"
        )
        raise DataError(path, where, expected, repr((flag, kind, sid)))
    wrong = normalise(wrong, path, f"{where}, column Error Sentence")
    right = normalise(right, path, f"{where}, column Corrected Sentence")
    return MedecText(tid, split, text, 1, kind, int(sid), wrong, right)


def read_file(path: Path, split: str, skips: SkipLog) -> list[MedecText]:
    """The texts of one MEDEC-MS CSV; its empty rows (the withheld UW texts) counted in ``skips``."""
    out = []
    for n, fields in read_csv(path, HEADER):
        if not any(fields):
            skips.add("medec: empty row (a withheld MEDEC-UW text)")
            continue
        out.append(_text(fields, split, path, n))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[MedecText]:
    """The MS validation and test texts, in that order."""
    skips = skips if skips is not None else SkipLog()
    return [t for split, rel in SPLITS.items() for t in read_file(folder / rel, split, skips)]


def triplet(t: MedecText) -> tuple[str, str, str] | None:
    """(the case without its wrong sentence, the corrected sentence, the erroneous one) of an error text;
    None for an error-free text, or where the wrong sentence is not found in the text once."""
    if not t.error_flag or t.error_sentence is None or t.corrected_sentence is None:
        return None
    if t.text.count(t.error_sentence) != 1:
        return None
    case = " ".join(t.text.replace(t.error_sentence, " ").split())
    return case, t.corrected_sentence, t.error_sentence


def test_sets(texts: list[MedecText]) -> TestYield:
    """The ``medec`` near-miss triplets of the test file's error texts."""
    got = [triplet(t) for t in texts if t.split == TEST_SPLIT]
    rows = [dict(zip(layout.COLUMNS[layout.TRIPLETS], g, strict=True)) for g in got if g is not None]
    return TestYield(sets={("test", "medec"): rows})


def training_rows(texts: list[MedecText], skips: SkipLog) -> Rows:
    """The near-miss triplets of the validation file's error texts (curated hard negatives); never the test
    file's. The validation unit is the text id."""
    out = []
    for t in texts:
        if t.split == TEST_SPLIT or not t.error_flag:
            continue
        got = triplet(t)
        if got is None:
            skips.add("medec: wrong sentence not found once in its text")
            continue
        out.append(row(layout.TRIPLETS, "medec", t.id, *got))
    return {layout.TRIPLETS: out}


def manifest_info(texts: list[MedecText]) -> dict[str, object]:
    """The manifest's MEDEC counts."""
    return {
        "medec_texts": len(texts),
        "medec_error_pairs": sum(t.error_flag for t in texts),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="medec",
        name="MEDEC-MS",
        row_sources=("medec",),
        license="CC BY 4.0",
        role="train+validation: triplets (case->corrected sentence, erroneous sentence; validation file); "
        "test: near-miss triplets (test file)",
        url="https://github.com/abachaa/MEDEC",
        commit="70268d24e3ce0cd6d0e099ff7bfd4966f2bbcc28",
        attribution=(
            "Ben Abacha et al., 2025, MEDEC: A Benchmark for Medical Error Detection and Correction in "
            "Clinical Notes"
        ),
        bibtex="""@inproceedings{medec,
  author = {Asma {Ben Abacha} and Wen{-}wai Yim and Yujuan Fu and Zhaoyi Sun and Meliha Yetisgen and
    Fei Xia and Thomas Lin},
  title = {MEDEC: A Benchmark for Medical Error Detection and Correction in Clinical Notes},
  booktitle = {Findings of the Association for Computational Linguistics, ACL 2025, Vienna, Austria,
    July 27 - August 1, 2025},
  pages = {22539--22550},
  publisher = {Association for Computational Linguistics},
  year = {2025},
  url = {https://aclanthology.org/2025.findings-acl.1159/}
}""",
    ),
    files=(VALIDATION, TEST),
    # @ 70268d24e3ce
    pins={
        TEST: Pin("f35e2c3c1e4d98ca900394c4fcff14c2a84752e48ddc83698401da6a360c707e", 9500),
        VALIDATION: Pin("7571aec311e2fb88d9084082af2323aa579d102e1d5e1a06faf930fe4fd3977d", 9131),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="sentences",
)
