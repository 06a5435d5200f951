"""The passage-level training sources of issue 39: Cochrane plain-language summaries and COVID-QA.

Each adapter reads the real files (skipped where the raw data is not on the machine) and malformed copies (the
error names the file, the line or element, and what was expected); a build holding the two writes their pairs
in their own validation group; the recipes name them (cpu.yaml and tiny.yaml at 0 rows, gpu.yaml in full).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fakes import RAW, build_from_excerpts, copy_source, needs_raw, rows_by_source

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.core.paths import PROJECT_ROOT
from medenc.data import leakage
from medenc.data.parsing import SkipLog
from medenc.data.sources import REGISTRY, cochrane_pls, covid_qa
from medenc.training.recipe import load_recipe

MINE = (cochrane_pls.SOURCE, covid_qa.SOURCE)
pytestmark = needs_raw(MINE, "raw passage sources")


# --- Cochrane -----------------------------------------------------------------------------------------------
def test_cochrane_reads_every_review_as_one_lay_to_technical_pair() -> None:
    reviews = cochrane_pls.read(RAW / "cochrane_pls")
    assert len(reviews) == 891 and Counter(r.split for r in reviews) == {"val": 411, "test": 480}
    first = reviews[0]
    assert (first.doi, first.review_id) == ("10.1002/14651858.CD000370", "CD000370")
    assert first.results.startswith("Fifty-four trials enrolling 6545 patients were included.")
    assert first.summary.startswith("The goal of this systematic review was to examine the effects")
    rows = cochrane_pls.training_rows(reviews, SkipLog())[layout.PAIRS]
    assert len(rows) == 891 and (rows[0]["anchor"], rows[0]["positive"]) == (first.summary, first.results)
    assert {r["_group"] for r in rows} == {f"cochrane_pls:{r.review_id}" for r in reviews}


def test_cochrane_files_that_disagree_or_a_foreign_doi_name_the_file_and_line(tmp_path) -> None:
    folder = copy_source(cochrane_pls.SOURCE, tmp_path)
    doi = folder / "test.doi"
    lines = doi.read_text(encoding="utf-8").splitlines(keepends=True)
    doi.write_text("".join([lines[0], "doi:10.1002/14651858.CD000001\n", *lines[2:]]), encoding="utf-8")
    with pytest.raises(DataError) as e:
        cochrane_pls.read(folder)
    assert e.value.path == str(doi) and e.value.where == "line 2" and "Cochrane DOI" in e.value.expected
    doi.write_text("".join(lines[:-1]), encoding="utf-8")  # one line fewer than test.source
    with pytest.raises(DataError, match=r"test\.source.*line for line.*doi: 479 lines"):
        cochrane_pls.read(folder)


# --- COVID-QA -----------------------------------------------------------------------------------------------
def test_covid_qa_locates_every_answer_and_its_passage_holds_it() -> None:
    data = covid_qa.read(RAW / "covid_qa")
    assert (len(data.articles), len(data.questions)) == (96, 1327)
    assert Counter(q.located for q in data.questions) == {"exact": 1098, "nearest": 221, "as given": 8}
    for q in data.questions:
        text = covid_qa.passage(data.articles[q.article], q.start, q.answer)
        words = len(text.split())
        assert words >= covid_qa.WINDOW_WORDS or text.endswith(data.articles[q.article].split()[-1])
        if q.located != "as given":
            assert " ".join(q.answer.split()) in text, q.id
    skips = SkipLog()
    rows = covid_qa.training_rows(data, skips)[layout.PAIRS]
    generic = skips.counts["covid_qa: question asked of several articles (generic)"]
    assert (len(rows), generic) == (1322, 5)  # "what is the conclusion of this report?" of two articles, ...
    assert not {leakage.key(r["anchor"]) for r in rows} & {"what is the conclusion of this report?"}
    assert {r["source"] for r in rows} == {"covid_qa"} and len({r["_group"] for r in rows}) == 96


def test_the_passage_starts_at_the_answers_sentence_and_runs_the_window() -> None:
    context = "Title\n\nFirst sentence here. The answer is forty-two. " + "More words follow. " * 60
    start = context.index("The answer")
    text = covid_qa.passage(context, start, "forty-two")
    assert text.startswith("The answer is forty-two.") and len(text.split()) == covid_qa.WINDOW_WORDS
    assert covid_qa.locate(context, "answer is", start + 2) == (start + 4, "nearest")
    assert covid_qa.locate(context, "not there", 7) == (7, "as given")


@pytest.mark.parametrize(
    ("edit", "where", "expected"),
    [
        (lambda qa: qa["answers"].append(dict(qa["answers"][0])), "data[0].paragraphs[0].qas[0]",
         "one answer"),
        (lambda qa: qa["answers"][0].update(answer_start=10**9), "data[0].paragraphs[0].qas[0].answers[0]",
         "answer_start inside the context"),
        (lambda qa: qa.update(question=7), "data[0].paragraphs[0].qas[0]", "'question': a str"),
    ],
)  # fmt: skip
def test_a_malformed_covid_qa_element_is_named(tmp_path, edit, where, expected) -> None:
    folder = copy_source(covid_qa.SOURCE, tmp_path)
    path = folder / covid_qa.FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc["data"][0]["paragraphs"][0]["qas"][0])
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError) as e:
        covid_qa.read(folder)
    assert e.value.path == str(path) and e.value.where == where and expected in e.value.expected


# --- in the build and the recipes ---------------------------------------------------------------------------
def test_the_two_flow_through_a_build_in_their_own_validation_group(tmp_path) -> None:
    for source in MINE:
        copy_source(source, tmp_path / "raw")
    _, manifest, _ = build_from_excerpts(tmp_path, MINE)
    rows = rows_by_source(manifest)
    assert set(rows) == {"cochrane_pls", "covid_qa"} and rows["cochrane_pls"] == 891
    assert manifest["sets"]["validation"]["pairs"]["rows"] > 0
    assert manifest["info"]["covid_qa_answers_nearest_offset"] == 221
    assert {s.validation_group for s in MINE} == {"passages"}
    assert all(s in REGISTRY for s in MINE) and REGISTRY[-2:] == MINE  # appended: older bytes kept


def test_the_recipes_name_them_at_zero_on_the_cpu_and_in_full_on_the_gpu() -> None:
    recipes = {n: load_recipe(PROJECT_ROOT / "recipes" / f"{n}.yaml") for n in ("cpu", "gpu", "tiny")}
    for name in ("cochrane_pls", "covid_qa"):
        assert recipes["cpu"].phase2.sources[name] == 0 and recipes["tiny"].phase2.sources[name] == 0
        assert name in recipes["gpu"].phase2.sources and recipes["gpu"].phase2.sources[name] is None
