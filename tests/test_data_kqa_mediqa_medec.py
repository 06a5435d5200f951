"""Tests of three sentence sources (K-QA, MEDIQA 2021, MEDEC-MS; in the build since issue 30).

Each adapter reads a small excerpt of the real files (copied from them into ``tmp_path``: no data file is
committed) and a malformed copy (the error names the file, the line or item, and what was expected); the
counts on the real files; and a build whose registry holds the three. Their held-out sets:
tests/test_data_sentence_sets.py; the excerpts: tests/fakes.py.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from fakes import (
    RAW,
    build_from_excerpts,
    kqa_excerpt,
    medec_excerpt,
    mediqa_excerpt,
    needs_raw,
    rows_by_source,
)

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import pins
from medenc.data.parsing import SkipLog
from medenc.data.sources import PENDING, REGISTRY, k_qa, medec, mediqa2021

MINE = (k_qa.SOURCE, mediqa2021.SOURCE, medec.SOURCE)
pytestmark = needs_raw(MINE, "raw sentence sources")


# --- each adapter on an excerpt of the real files ---------------------------------------------------------
def test_kqa_excerpt(tmp_path: Path) -> None:
    skips = SkipLog()
    data = k_qa.read(kqa_excerpt(tmp_path / "k_qa"), skips)
    assert len(data.answered) == 30 and len(data.questions) == 30 and len(data.statements) == 40
    first = data.answered[0]
    assert first.question.startswith("Alright so I dont know much about Lexapro")
    assert first.answer.startswith("Escitalopram, sold under the brand names Lexapro")
    assert "Escitalopram is sold under the brand names Lexapro and Cipralex" in first.must_have
    assert first.icd10 == "Other specified depressive episodes"
    s = data.statements[0]
    assert (s.model, s.category, s.label, s.labels) == (
        "gpt35",
        "Must_have",
        "Entailment",
        ("Entailment",) * 3,
    )
    assert s.statement.startswith("Escitalopram is an antidepressant")
    assert skips.counts == {"k_qa: empty Must_have statement": 1}  # line 24 of the real file
    assert k_qa.SOURCE.training_rows is None  # a test source


def test_kqa_statements_as_a_python_list_string(tmp_path: Path) -> None:
    """SOURCE.txt warns of Python-list strings: read with literal_eval, never eval."""
    folder = kqa_excerpt(tmp_path / "k_qa")
    path = folder / k_qa.QA
    path.write_text(
        '{"Question": "Q?", "Free_form_answer": "A.", "Must_have": "[\'one\', \\"two\\"]", '
        '"Nice_to_have": [], "ICD_10_diag": ""}\n',
        encoding="utf-8",
    )
    (answered,) = k_qa.read_answered(path, SkipLog())
    assert answered.must_have == ("one", "two") and answered.nice_to_have == () and answered.icd10 is None
    path.write_text(
        '{"Question": "Q?", "Free_form_answer": "A.", "Must_have": "__import__(\'os\')", '
        '"Nice_to_have": []}\n'
    )
    with pytest.raises(DataError, match=r"line 1, 'Must_have': expected a list of statements"):
        k_qa.read_answered(path, SkipLog())


def test_kqa_malformed(tmp_path: Path) -> None:
    folder = kqa_excerpt(tmp_path / "k_qa")
    path = folder / k_qa.QA
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:2], lines[2][:-40] + "\n", *lines[3:]]), encoding="utf-8")
    with pytest.raises(
        DataError, match=r"questions_w_answers\.jsonl, line 3, column \d+: expected one JSON object"
    ):
        k_qa.read(folder)
    path.write_text("".join(lines)[:-30], encoding="utf-8")  # cut off in the last line
    with pytest.raises(DataError, match=r"line 30 \(the last\): expected a final newline"):
        k_qa.read(folder)
    path.write_text("".join(lines), encoding="utf-8")
    nli = folder / k_qa.NLI
    text = nli.read_text(encoding="utf-8")
    nli.write_text(text.replace("Entailment,Entailment,Entailment,Entailment", "Entailment,Entail,Yes,No", 1))
    with pytest.raises(
        DataError, match=r"NLI_medical_annotator\.csv, line 2 \(row 0\): expected an index, a category"
    ):
        k_qa.read(folder)
    nli.write_text(text[: text.index('"', 2000) + 30], encoding="utf-8")  # cut off inside a quoted answer
    with pytest.raises(
        DataError, match=r"NLI_medical_annotator\.csv, line \d+ \(the row starting there\): expected a"
    ):
        k_qa.read(folder)


def test_mediqa_excerpt(tmp_path: Path) -> None:
    data = mediqa2021.read(mediqa_excerpt(tmp_path / "mediqa2021"))
    first = data.summaries[0]
    assert (first.id, first.split) == ("3", "validation")
    assert first.question.startswith("I'm 53 years old. I have got meniscus tear")  # whitespace collapsed
    assert first.summary == "Should I leave a meniscus tear untreated if it does not cause problems?"
    a = data.answers[0]
    assert (a.id, a.split, a.question) == ("3", "validation", first.summary)
    assert a.abstractive.startswith("Self-care and rest might be sufficient") and len(a.answers) >= 2
    test = next(x for x in data.answers if x.split == "test")
    assert test.id == "5" and test.extractive and len(test.answers) == 2  # the strict-OOXML workbook
    rows = mediqa2021.training_rows(data, SkipLog())[layout.PAIRS]
    assert Counter(r["source"] for r in rows) == {"mediqa2021_qs": 50, "mediqa2021_answer": 50}
    held = {s.question for s in data.summaries if s.split == "test"} | {
        x.question for x in data.answers if x.split == "test"
    }
    assert not held & {r["anchor"] for r in rows}  # only the validation files train
    assert ("mediqa2021_answer", a.question, a.abstractive) in {
        (r["source"], r["anchor"], r["positive"]) for r in rows
    }


def _rewrite_member(path: Path, member: str, edit) -> None:
    """``path`` (an .xlsx) with one zip member's text replaced by ``edit(text)``."""
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts[member] = edit(parts[member].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in parts.items():
            z.writestr(n, data)


def test_mediqa_malformed(tmp_path: Path) -> None:
    folder = mediqa_excerpt(tmp_path / "mediqa2021")
    qs = folder / mediqa2021.QS_FILES["validation"]
    original = qs.read_bytes()
    _rewrite_member(
        qs, "xl/worksheets/sheet1.xml", lambda t: re.sub(r'<c r="C2"[^>]*>.*?</c>', "", t, count=1)
    )
    with pytest.raises(
        DataError, match=r"ValidationSet\.xlsx, sheet 1, row 2, column C \(Summary\): expected a non-empty"
    ):
        mediqa2021.read(folder)
    qs.write_bytes(original[: len(original) // 2])  # a copy cut off
    with pytest.raises(DataError, match=r"ValidationSet\.xlsx: expected an Excel \.xlsx workbook"):
        mediqa2021.read(folder)
    qs.write_bytes(original)
    short = folder / mediqa2021.MAS_FILES["validation"][0]
    lines = short.read_text(encoding="utf-8").splitlines(keepends=True)
    short.write_text("".join([*lines[:4], lines[4].replace("||", " ", 1), *lines[5:]]), encoding="utf-8")
    with pytest.raises(DataError, match=r"ShortQuestions\.txt, line 5: expected '<question id>\|\|<text>'"):
        mediqa2021.read(folder)
    short.write_text(
        "".join(lines[:-1]), encoding="utf-8"
    )  # a question missing: its summaries have no question
    with pytest.raises(
        DataError, match=r"MultiAbstrativeSummaries\.txt: expected a summary for each question id"
    ):
        mediqa2021.read(folder)


def test_medec_excerpt(tmp_path: Path) -> None:
    skips = SkipLog()
    texts = medec.read(medec_excerpt(tmp_path / "medec"), skips)
    assert [t.split for t in texts] == ["validation"] * 6 + ["test"] * 6
    first = texts[0]
    assert (first.id, first.error_flag, first.error_type, first.sentence_id) == (
        "ms-val-0",
        1,
        "causalOrganism",
        5,
    )
    assert first.error_sentence == "Culture tests indicate Neisseria gonorrhoeae."
    assert first.corrected_sentence == "Culture tests indicate Trichomonas vaginalis."
    assert first.error_sentence in first.text
    assert texts[1].error_flag == 0 and texts[1].error_sentence is None  # upstream's NA
    assert skips.counts == {"medec: empty row (a withheld MEDEC-UW text)": 2}
    rows = medec.training_rows(texts, skips)[layout.TRIPLETS]  # the validation file's error texts only
    assert len(rows) == sum(t.error_flag for t in texts if t.split == "validation")


def test_medec_malformed(tmp_path: Path) -> None:
    folder = medec_excerpt(tmp_path / "medec")
    path = folder / medec.VALIDATION
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(",1,causalOrganism,5,", ",2,causalOrganism,5,", 1), encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"ValidationSet-with-GroundTruth-and-ErrorType\.csv, line 2 \(ms-val-0\): expected Error Flag",
    ):
        medec.read(folder)
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # cut off inside a quoted text
    with pytest.raises(
        DataError, match=r"line \d+ \(the row starting there\): expected a well-formed CSV row"
    ):
        medec.read(folder)
    path.write_text(text.replace(",NA,NA,NA", ",NA,NA", 1), encoding="utf-8")
    with pytest.raises(
        DataError, match=r"ErrorType\.csv, line \d+: expected 9 comma-separated fields, found 8"
    ):
        medec.read(folder)


# --- the real files ---------------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_sentence_source_counts() -> None:
    """What each adapter yields on the real files (docs/data.md, "Prepared, not yet in the build")."""
    skips = SkipLog()
    kqa = k_qa.read(RAW / "k_qa", skips)
    assert (len(kqa.answered), len(kqa.questions), len(set(kqa.questions)), len(kqa.statements)) == (
        201,
        1212,
        1167,
        399,
    )
    assert (
        sum(len(a.must_have) for a in kqa.answered) == 889
        and sum(len(a.nice_to_have) for a in kqa.answered) == 697
    )
    assert Counter(s.label for s in kqa.statements) == {
        "Neutral": 234,
        "Entailment": 153,
        "Contradiction": 12,
    }
    mq = mediqa2021.read(RAW / "mediqa2021", skips)
    assert Counter(s.split for s in mq.summaries) == {"validation": 50, "test": 100}
    assert Counter(a.split for a in mq.answers) == {"validation": 50, "test": 80}
    assert sum(len(a.answers) for a in mq.answers if a.split == "validation") == 192
    assert sum(len(a.answers) for a in mq.answers if a.split == "test") == 303
    rows = mediqa2021.training_rows(mq, skips)[layout.PAIRS]
    assert Counter(r["source"] for r in rows) == {"mediqa2021_qs": 50, "mediqa2021_answer": 50}
    texts = medec.read(RAW / "medec", skips)
    assert Counter((t.split, t.error_flag) for t in texts) == {
        ("validation", 1): 319,
        ("validation", 0): 255,
        ("test", 1): 311,
        ("test", 0): 286,
    }
    assert Counter(t.error_type for t in texts if t.split == "validation" and t.error_flag) == {
        "management": 168,
        "diagnosis": 86,
        "pharmacotherapy": 27,
        "treatment": 25,
        "causalOrganism": 13,
    }
    assert all(t.error_sentence in t.text for t in texts if t.error_flag)
    assert skips.counts == {
        "k_qa: empty Must_have statement": 3,
        "medec: empty row (a withheld MEDEC-UW text)": 328,
    }


def test_sentence_sources_are_in_the_build() -> None:
    """Registered (issue 30), no longer pending."""
    assert all(s in REGISTRY for s in MINE) and not {s.folder for s in MINE} & {s.folder for s in PENDING}
    assert k_qa.SOURCE.info.role.startswith("test only") and not k_qa.SOURCE.info.row_sources
    assert mediqa2021.SOURCE.info.row_sources == ("mediqa2021_qs", "mediqa2021_answer")
    for source in MINE:
        assert source.info.bibtex and source.info.commit and source.info.license, source.folder
    # The pins are those of the files as they are.
    assert pins.pins_of(MINE).differences(pins.hash_raw_files(RAW, MINE)) == {}


def test_the_sentence_sources_flow_through_a_build(tmp_path: Path) -> None:
    """A build whose registry holds the three (excerpts, pinned as they are) writes MEDIQA's pairs and
    MEDEC's validation triplets; K-QA trains nothing."""
    root = tmp_path / "raw"
    kqa_excerpt(root / "k_qa")
    mediqa_excerpt(root / "mediqa2021")
    medec_excerpt(root / "medec")
    _, manifest, _ = build_from_excerpts(tmp_path, MINE)
    rows = rows_by_source(manifest)
    assert set(rows) == {"mediqa2021_qs", "mediqa2021_answer"} and sum(rows.values()) == 100
    triplets = sum(
        manifest["sets"][s]["triplets"].get("by_source", {}).get("medec", 0) for s in layout.TRAIN_SPLITS
    )
    assert triplets == 4  # the excerpt's validation error texts
    assert (
        manifest["sets"]["test"]["medec"]["rows"] == 3
        and manifest["sets"]["test"]["k_qa_queries"]["rows"] == 30
    )
    assert set(manifest["sources"]) == {"k_qa", "mediqa2021", "medec"}
    assert manifest["info"]["medec_error_pairs"] == 7 and manifest["info"]["k_qa_statement_pairs"] == 40
    assert manifest["dropped"]["skipped upstream quirks"]["medec: empty row (a withheld MEDEC-UW text)"] == 2
