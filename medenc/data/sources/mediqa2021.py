"""MEDIQA 2021 (tasks 1 and 2): consumer health questions with expert summaries, short questions with lay
answer summaries.

MEDIQA 2021 has no training split of its own (MeQSum and MEDIQA-AnS were its training data): its
validation files train here and its test files are the test side (read and kept, never yielded as rows).

- Task 1 (question summarisation), .xlsx with header q_id, NLM Question, Summary (validation: also Question
  Focus, Question Type): validation 50, test 100 (NLM consumer questions of December 2020 -> summary).
- Task 2 (multi-answer summarisation): ``<id>||<text>`` lines (.txt; the test summaries end without a final
  newline, the summaries use CRLF): short questions, their abstractive and extractive multi-answer summaries;
  the answers (.xlsx: question id, answer id, answer) they summarise. Validation 50 questions (the same ids
  and texts as task 1's validation summaries) with 192 answers, test 80 with 303 answers.

The .xlsx files of task 2 use the strict OOXML namespace, which openpyxl rejects: every workbook is read
with the standard library (:func:`read_xlsx`: zip, shared strings, first sheet), namespaces ignored.
Training rows: ``mediqa2021_qs`` (consumer question -> summary) and ``mediqa2021_answer`` (short question ->
abstractive answer summary), validation files only; the validation unit is the question id.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, read_utf8, require_file
from medenc.data.source import Pin, Rows, Source, SourceInfo, row

T1 = "Task1/MEDIQA2021-Task1-{}.xlsx"
QS_FILES = {
    "validation": T1.format("QuestionSummarization-ValidationSet"),
    "test": T1.format("TestSet-ReferenceSummaries"),
}
T2V, T2T = "Task2/Validation/MEDIQA2021_Task2_", "Task2/Test/MEDIQA2021_Task2_"
# split -> (short questions, abstractive summaries, extractive summaries, answers)
MAS_FILES = {
    "validation": (
        f"{T2V}VAlidationSet_ShortQuestions.txt",
        f"{T2V}ValidationSet_MultiAbstrativeSummaries.txt",
        f"{T2V}ValidationSet_MultiExtractiveSummaries.txt",
        f"{T2V}ValidationSet_Answers.xlsx",
    ),
    "test": (
        f"{T2T}MAS_TestSet_shortQuestions.txt",
        f"{T2T}TestSet_MultiAbstrativeSummaries.txt",
        f"{T2T}TestSet_MultiExtractiveSummaries.txt",
        f"{T2T}MAS_TestSet_Answers.xlsx",
    ),
}
TRAIN_SPLIT = "validation"  # the split that trains; "test" is held out
QS_HEADER = ("q_id", "NLM Question", "Summary")
ANSWERS_HEADERS = (("QuestionID", "AnswerID", "Answer"), ("question_id", "answer_id", "Answer"))
_CELL = re.compile(r"^([A-Z]+)(\d+)$")


@dataclass(frozen=True)
class QuestionSummary:
    """Task 1: a consumer health question and its expert summary."""

    id: str
    split: str
    question: str
    summary: str


@dataclass(frozen=True)
class AnswerSummary:
    """Task 2: a short question, its abstractive and extractive summaries and the answers they summarise."""

    id: str
    split: str
    question: str
    abstractive: str
    extractive: str
    answers: tuple[str, ...] = ()


@dataclass
class Mediqa2021:
    """Everything read, both splits."""

    summaries: list[QuestionSummary] = field(default_factory=list)
    answers: list[AnswerSummary] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # transitional and strict OOXML differ only in the namespace


def _texts(el: ET.Element) -> str:
    return "".join(e.text or "" for e in el.iter() if _local(e.tag) == "t")  # rich text: several <t> runs


def _xml(z: zipfile.ZipFile, name: str, path: Path) -> ET.Element:
    try:
        return ET.fromstring(z.read(name))
    except KeyError:
        raise DataError(path, name, "this part of an .xlsx workbook", "none") from None
    except (zipfile.BadZipFile, OSError) as e:  # a damaged member (bad CRC, cut-off deflate stream)
        raise DataError(path, name, "an intact .xlsx workbook", str(e)) from e
    except ET.ParseError as e:
        raise DataError(path, f"{name}, line {e.position[0]}", "well-formed XML", str(e)) from e


def read_xlsx(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(row number, column letter -> text) of the first sheet of an .xlsx (transitional or strict OOXML)."""
    require_file(path)
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DataError(path, None, "an Excel .xlsx workbook (a zip file)", str(e)) from e
    with z:
        names = z.namelist()
        shared = "xl/sharedStrings.xml" in names and _xml(z, "xl/sharedStrings.xml", path)
        strings = [_texts(si) for si in shared] if shared is not False else []
        sheet = _xml(z, "xl/worksheets/sheet1.xml", path)
    out = []
    for r in (e for e in sheet.iter() if _local(e.tag) == "row"):
        cells = {}
        for c in (e for e in r if _local(e.tag) == "c"):
            m = _CELL.match(c.get("r", ""))
            value = next((e.text or "" for e in c if _local(e.tag) == "v"), "")
            if m is None or (c.get("t") == "s" and not (value.isdigit() and int(value) < len(strings))):
                raise DataError(
                    path, f"row {r.get('r')}", "cells with a reference and a shared string", c.get("r")
                )
            kind = c.get("t")
            cells[m.group(1)] = (
                strings[int(value)] if kind == "s" else _texts(c) if kind == "inlineStr" else value
            )
        out.append((int(r.get("r", "0")), cells))
    return out


def _table(path: Path, headers: tuple[tuple[str, ...], ...]) -> list[tuple[str, list[str]]]:
    """(where, cleaned cells) of the rows under one of ``headers`` (row 1); blank rows skipped."""
    rows = read_xlsx(path)
    cols = [chr(ord("A") + i) for i in range(len(headers[0]))]
    found = tuple(rows[0][1].get(c, "").strip() for c in cols) if rows else ()
    if found not in headers:
        raise DataError(path, "sheet 1, row 1", f"the header {', '.join(headers[0])}", repr(found))
    out = []
    for n, cells in rows[1:]:
        if not any((cells.get(c) or "").strip() for c in cols):
            continue  # spreadsheet padding
        where = f"sheet 1, row {n}"
        texts = [
            normalise(cells.get(c), path, f"{where}, column {c} ({h})")
            for c, h in zip(cols, found, strict=True)
        ]
        out.append((where, texts))
    return out


def read_id_lines(path: Path) -> dict[str, str]:
    """``id||text`` lines (a last line without a newline is upstream's: every line must have both parts)."""
    text = read_utf8(path)
    out: dict[str, str] = {}
    lines = text.split("\n")
    for n, line in enumerate(lines[:-1] if not lines[-1] else lines, start=1):
        line = line.removesuffix("\r")
        qid, sep, body = line.partition("||")
        if not sep or not qid.strip().isdigit() or qid.strip() in out:
            raise DataError(path, f"line {n}", "'<question id>||<text>', each id once", repr(line[:80]))
        out[qid.strip()] = normalise(body, path, f"line {n} (id {qid.strip()})")
    if not out:
        raise DataError(path, None, "'<question id>||<text>' lines", "an empty file")
    return out


def _mas(folder: Path, split: str) -> list[AnswerSummary]:
    """Task 2 of one split: every question with both summaries (the ids of the three files must agree)."""
    q_rel, abs_rel, ext_rel, ans_rel = MAS_FILES[split]
    questions = read_id_lines(folder / q_rel)
    abstractive, extractive = read_id_lines(folder / abs_rel), read_id_lines(folder / ext_rel)
    for rel, other in ((abs_rel, abstractive), (ext_rel, extractive)):
        if other.keys() != questions.keys():
            diff = sorted(other.keys() ^ questions.keys(), key=int)[:5]
            raise DataError(
                folder / rel, None, f"a summary for each question id of {q_rel}", f"ids differ: {diff}"
            )
    answers: dict[str, list[str]] = {}
    for where, (qid, _, text) in _table(folder / ans_rel, ANSWERS_HEADERS):
        if qid not in questions:
            raise DataError(folder / ans_rel, where, f"a question id of {q_rel}", repr(qid))
        answers.setdefault(qid, []).append(text)
    return [
        AnswerSummary(q, split, text, abstractive[q], extractive[q], tuple(answers.get(q, ())))
        for q, text in questions.items()
    ]


def read(folder: Path, skips: SkipLog | None = None) -> Mediqa2021:
    """Tasks 1 and 2, validation then test."""
    out = Mediqa2021()
    for split, rel in QS_FILES.items():
        for _, (qid, question, summary) in _table(folder / rel, (QS_HEADER,)):
            out.summaries.append(QuestionSummary(qid, split, question, summary))
        out.answers += _mas(folder, split)
    return out


def training_rows(data: Mediqa2021, skips: SkipLog) -> Rows:
    """Question -> summary and short question -> abstractive answer summary pairs, validation files only."""
    pairs = [
        row(layout.PAIRS, "mediqa2021_qs", s.id, s.question, s.summary)
        for s in data.summaries
        if s.split == TRAIN_SPLIT
    ]
    pairs += [
        row(layout.PAIRS, "mediqa2021_answer", a.id, a.question, a.abstractive)
        for a in data.answers
        if a.split == TRAIN_SPLIT
    ]
    return {layout.PAIRS: pairs}


def manifest_info(data: Mediqa2021) -> dict[str, object]:
    """The manifest's MEDIQA 2021 counts."""
    return {
        "mediqa2021_question_summaries": len(data.summaries),
        "mediqa2021_answer_summaries": len(data.answers),
    }


_PINS = {
    QS_FILES["validation"]: Pin("6be459891f12bb7d7812d0c2b243ad9e7ae0b178542bab8123a1130312154bb5", None),
    QS_FILES["test"]: Pin("c5d740a64c84deea4960bb0622b1243cab8664b4b2a387c9b497ddbbafbc9b61", None),
    MAS_FILES["validation"][0]: Pin("b0281dbd258e61c4b98ae5e8c2e5e41b2f52a377572f8de5b99cdfc998693b68", 50),
    MAS_FILES["validation"][1]: Pin("e36f5fe09ef0c29844165619d306e1492426223ba381e97106f0f6f9d38abbe4", 50),
    MAS_FILES["validation"][2]: Pin("290c5b5c5fa377133922b7e885097e8c628142271c3732aed0656ba45364fa49", 50),
    MAS_FILES["validation"][3]: Pin("5b988484cb189818bc2d649521ec8c66917430fe44615d6db23d465e9bccba6f", None),
    MAS_FILES["test"][0]: Pin("cb8adfca32a179b98ce264cc50feb981f6e051612e4ff69669093276bf08dff3", 80),
    MAS_FILES["test"][1]: Pin("f3521289eaccac96918d8670f78873fa812895f3566851fdd631360724a2898b", 80),
    MAS_FILES["test"][2]: Pin("43422cd085dfde600825aaf5521d5c88220ef54622f0ee160c53ac51e21086e8", 80),
    MAS_FILES["test"][3]: Pin("39344a15cc1155a4a11594d83593e9bfffab5f24367fd57814001690276a3e7d", None),
}

SOURCE = Source(
    info=SourceInfo(
        folder="mediqa2021",
        row_sources=("mediqa2021_qs", "mediqa2021_answer"),
        name="MEDIQA 2021 (question summarisation, multi-answer summarisation)",
        license="CC BY 4.0",
        role="train+validation: pairs (question->summary, short question->answer summary; validation files)",
        url="https://github.com/abachaa/MEDIQA2021",
        commit="8d7fe20706dd6af0d089a0252a201c3da78ded8f",
        attribution=(
            "Ben Abacha et al., 2021, Overview of the MEDIQA 2021 Shared Task on Summarization in the "
            "Medical Domain"
        ),
        bibtex="""@inproceedings{mediqa-2021,
  title = {Overview of the {MEDIQA} 2021 Shared Task on Summarization in the Medical Domain},
  author = {Ben Abacha, Asma and Mrabet, Yassine and Zhang, Yuhao and Shivade, Chaitanya and
    Langlotz, Curtis and Demner-Fushman, Dina},
  booktitle = {Proceedings of the 20th Workshop on Biomedical Language Processing},
  month = jun,
  year = {2021},
  publisher = {Association for Computational Linguistics},
  url = {https://aclanthology.org/2021.bionlp-1.8/},
  pages = {74--85}
}""",
    ),
    files=(*QS_FILES.values(), *(f for files in MAS_FILES.values() for f in files)),
    # @ 8d7fe20706dd
    pins=_PINS,
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    # Its own validation draw: in the common one its rows would push rows of the older sources out of it.
    validation_group="sentences",
)
