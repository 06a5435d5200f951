"""K-QA: real patient questions with physician-written answers, and answer/statement pairs labelled by
physicians as entailment, neutral or contradiction (test only).

- ``dataset/questions_w_answers.jsonl`` (JSON lines): 201 questions, each with its free-form physician answer,
  its must-have and nice-to-have statements (JSON lists here; SOURCE.txt warns they may be Python-list
  strings, which are read with :func:`ast.literal_eval`, never ``eval``), sources and ICD-10 diagnosis.
- ``dataset/questions.jsonl``: 1,212 patient questions without answers (some repeat; some are questions of
  the 201), kept as possible retrieval distractors.
- ``dataset/NLI_medical_annotator.csv`` (quoted CSV, an unnamed index column first): 399 (LLM answer,
  statement) pairs, three physicians' labels and their majority; the contradictions are near misses.

K-QA is a test source: the ``k_qa`` retrieval test (each of the 201 questions -> its physician answer, among
the 201 answers); it yields no training rows. The 12 contradict pairs are not near misses (an LLM's
paragraph against a one-sentence statement, not two sentences one fact apart) and too few for a set of
their own: they are kept in the records, unused, and train nothing (every one is about a held-out question).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, clean_or_none, normalise, stream_lines
from medenc.data.source import Pin, Sets, Source, SourceInfo, TestYield, query_sets
from medenc.data.sources.medec import read_csv

QA = "dataset/questions_w_answers.jsonl"
QUESTIONS = "dataset/questions.jsonl"
NLI = "dataset/NLI_medical_annotator.csv"
NLI_HEADER = (
    "",
    "Question",
    "llm_x",
    "answer",
    "claim",
    "category_x",
    "majority_label",
    "label_0",
    "label_1",
    "label_2",
)
LABELS = frozenset({"Entailment", "Neutral", "Contradiction"})
CATEGORIES = frozenset({"Must_have", "Nice_to_have"})


@dataclass(frozen=True)
class Answered:
    """One of the 201 questions with its physician answer and the statements the answer must / may hold."""

    line: int  # line number in questions_w_answers.jsonl: the question's id
    question: str
    answer: str
    must_have: tuple[str, ...]
    nice_to_have: tuple[str, ...]
    icd10: str | None = None  # the ICD-10 diagnosis title upstream gives


@dataclass(frozen=True)
class Statement:
    """An (LLM answer, statement) pair of NLI_medical_annotator.csv with the physicians' labels."""

    id: str  # the CSV's index column
    question: str
    model: str  # the LLM that wrote the answer (gpt4, gpt35, bard, askk)
    answer: str
    statement: str
    category: str  # Must_have or Nice_to_have
    label: str  # majority of the three: Entailment, Neutral or Contradiction
    labels: tuple[str, str, str]


@dataclass
class Kqa:
    """Everything read."""

    answered: list[Answered] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)  # questions.jsonl, in file order
    statements: list[Statement] = field(default_factory=list)


def _json_lines(path: Path) -> list[tuple[int, dict]]:
    """(line, object) of a JSON-lines file; a line that is not a JSON object is a DataError naming it."""
    out = []
    for n, line in stream_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"line {n}, column {e.colno}", "one JSON object per line", str(e)) from e
        if not isinstance(obj, dict):
            raise DataError(path, f"line {n}", "one JSON object per line", type(obj).__name__)
        out.append((n, obj))
    if not out:
        raise DataError(path, None, "JSON lines", "an empty file")
    return out


def _text(obj: dict, key: str, path: Path, n: int) -> str:
    """The non-empty text under ``key`` of line ``n``'s object, whitespace collapsed."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise DataError(path, f"line {n}", f"a text under {key!r}", repr(value)[:80])
    return normalise(value, path, f"line {n}, {key!r}")


def _statements(obj: dict, key: str, path: Path, n: int, skips: SkipLog) -> tuple[str, ...]:
    """A statement list: a JSON list of texts, or a Python-list literal in a string (literal_eval only);
    its empty statements (upstream has a few) are left out and counted."""
    value = obj.get(key)
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise DataError(path, f"line {n}, {key!r}", "a list of statements (texts)", repr(obj.get(key))[:80])
    kept = tuple(t for t in map(clean_or_none, value) if t is not None)
    if len(kept) < len(value):
        skips.add(f"k_qa: empty {key} statement", len(value) - len(kept))
    return kept


def read_answered(path: Path, skips: SkipLog) -> list[Answered]:
    """The questions with physician answers, in file order."""
    return [
        Answered(
            n,
            _text(obj, "Question", path, n),
            _text(obj, "Free_form_answer", path, n),
            _statements(obj, "Must_have", path, n, skips),
            _statements(obj, "Nice_to_have", path, n, skips),
            clean_or_none(obj.get("ICD_10_diag") if isinstance(obj.get("ICD_10_diag"), str) else None),
        )
        for n, obj in _json_lines(path)
    ]


def read_statements(path: Path) -> list[Statement]:
    """The labelled (answer, statement) pairs; a label or category that is not upstream's is a DataError."""
    out = []
    for n, f in read_csv(path, NLI_HEADER):
        where = f"line {n} (row {f[0] or '?'})"
        if not f[0].isdigit() or f[5] not in CATEGORIES or not LABELS.issuperset(f[6:]):
            expected = (
                f"an index, a category ({', '.join(sorted(CATEGORIES))}) and labels in {sorted(LABELS)}"
            )
            raise DataError(path, where, expected, repr((f[0], f[5], *f[6:])))
        texts = [normalise(f[i], path, f"{where}, column {NLI_HEADER[i]}") for i in (1, 2, 3, 4)]
        out.append(Statement(f[0], *texts, f[5], f[6], (f[7], f[8], f[9])))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> Kqa:
    """The three K-QA files."""
    skips = skips if skips is not None else SkipLog()
    questions = [_text(obj, "Question", folder / QUESTIONS, n) for n, obj in _json_lines(folder / QUESTIONS)]
    return Kqa(read_answered(folder / QA, skips), questions, read_statements(folder / NLI))


def build_test(data: Kqa) -> Sets:
    """The ``k_qa`` retrieval set: each answered question -> its physician answer."""
    queries = [(f"q{a.line}", a.question, a.answer) for a in data.answered]
    sets, _ = query_sets("k_qa", queries, [a.answer for a in data.answered], "a")
    return sets


def test_sets(data: Kqa) -> TestYield:
    """The consumer question -> physician answer retrieval test."""
    return TestYield(sets=build_test(data))


def manifest_info(data: Kqa) -> dict[str, object]:
    """The manifest's K-QA counts."""
    return {
        "k_qa_answered_questions": len(data.answered),
        "k_qa_statement_pairs": len(data.statements),
        "k_qa_contradictions": sum(s.label == "Contradiction" for s in data.statements),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="k_qa",
        name="K-QA",
        license="MIT",
        role="test only: consumer question->physician answer retrieval",
        url="https://github.com/Itaymanes/K-QA",
        commit="ef403d012e199fcfa0d8c02b38a96ff95164f4d0",
        attribution=(
            "Manes et al., 2024, K-QA: A Real-World Medical Q&A Benchmark (MIT License, Copyright (c) 2023 "
            "Itay Manes)"
        ),
        bibtex="""@misc{manes2024kqa,
  title = {K-QA: A Real-World Medical Q&A Benchmark},
  author = {Itay Manes and Naama Ronn and David Cohen and Ran Ilan Ber and Zehavi Horowitz-Kugler and
    Gabriel Stanovsky},
  year = {2024},
  eprint = {2401.14493},
  archivePrefix = {arXiv},
  primaryClass = {cs.CL}
}""",
    ),
    files=(QA, QUESTIONS, NLI, "LICENSE"),
    # @ ef403d012e19
    pins={
        QA: Pin("1d4204665e2c9e50c3c348b8ad1de2ddf5d90205c3efaea0eb38135192272c6f", 201),
        QUESTIONS: Pin("8038e1f0a173ffcbf918de3d7161e09d16c6ef77252d54995d0ffe6b07770887", 1212),
        NLI: Pin("98372a3feea2ac7b445357ec2ab2e6f6251ecd72ad03a102ea4e4cdf53956779", 501),
        "LICENSE": Pin("f50d2b0e84a08081ce6c3623b06a0c45866891e3e86ccdc2e35862e6ab12726a", None),
    },
    read=read,
    test_sets=test_sets,
    manifest_info=manifest_info,
)
