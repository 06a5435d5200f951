"""NFCorpus, dev split: NutritionFacts.org page titles (a lay reader's words) -> PubMed abstracts, graded
relevance 3 / 2 / 1 (test only, zero-shot: no source of ours trains on it, and its licence is academic use).

- ``dev.docs``: ``ID<TAB>text``, one PubMed title + abstract per line as the release preprocessed it
  (lowercased, stop words, numbers and punctuation removed); upstream ends without a final newline;
- ``dev.titles.queries``: ``ID<TAB>text``, the titles of NutritionFacts.org pages;
- ``dev.3-2-1.qrel``: TREC ``QUERY_ID<TAB>0<TAB>DOC_ID<TAB>LEVEL``, 3 a direct link, 2 an indirect one, 1
  marginal (no final newline either).

The ``nfcorpus_dev`` retrieval set is every query against the whole dev corpus (3,193 abstracts, each relevant
to some query: no distractors are added, the corpus is already small enough for a CPU evaluation). Its qrels
carry the grade (``relevance``); its nDCG@10 uses the gains 2^grade - 1 (:mod:`medenc.evaluation.metrics`).
A query or abstract equal to a training text leaves the set, not the training row
(:attr:`~medenc.data.source.Source.retest_equal`): 38 queries that are names the name sources train on ("liver
cancer", "glaucoma").
37 abstracts repeat another's text word for word: each text is one corpus row (the first id in file order),
with the highest grade any of its copies has, so that a tie between twins cannot decide a ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, read_utf8
from medenc.data.source import Pin, Sets, Source, SourceInfo, TestYield

DOCS = "dev.docs"
QUERIES = "dev.titles.queries"
QRELS = "dev.3-2-1.qrel"
NAME = "nfcorpus_dev"
GRADES = frozenset({1, 2, 3})
_DOC_ID = re.compile(r"^MED-\d+$")
_QUERY_ID = re.compile(r"^PLAIN-\d+$")


@dataclass(frozen=True)
class Judgment:
    """One line of the qrels: ``doc`` is ``grade`` (1-3) relevant to ``query``."""

    query: str
    doc: str
    grade: int


@dataclass(frozen=True)
class Nfcorpus:
    """The dev split as read: documents and queries by id (file order), and the graded judgments."""

    docs: dict[str, str]
    queries: dict[str, str]
    qrels: list[Judgment]

    def __len__(self) -> int:
        return len(self.queries)


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of a file whose last line may lack a newline (as upstream's do)."""
    lines = read_utf8(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(path, None, "one record per line", "an empty file")
    return list(enumerate(lines, start=1))


def read_id_text(path: Path, id_pattern: re.Pattern[str], what: str) -> dict[str, str]:
    """``ID<TAB>text`` lines as id -> text, in file order; a bad line or a repeated id is a DataError."""
    out: dict[str, str] = {}
    for n, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2 or not id_pattern.match(fields[0]):
            expected = f"two tab-separated fields, an id like {what} and the text"
            raise DataError(path, f"line {n}", expected, repr(line[:80]))
        if fields[0] in out:
            raise DataError(path, f"line {n}", "each id once", f"{fields[0]} again")
        out[fields[0]] = normalise(fields[1], path, f"line {n} ({fields[0]})")
    return out


def read_qrels(path: Path, queries: dict[str, str], docs: dict[str, str]) -> list[Judgment]:
    """The graded judgments; an unknown query or document, a grade not in 1-3 or a repeat is a DataError."""
    out, seen = [], set()
    for n, line in _lines(path):
        f = line.split("\t")
        if len(f) != 4 or f[1] != "0" or not f[3].isdigit() or int(f[3]) not in GRADES:
            expected = "TREC qrels: QUERY_ID, 0, DOC_ID, LEVEL (1, 2 or 3), tab-separated"
            raise DataError(path, f"line {n}", expected, repr(line[:80]))
        if f[0] not in queries or f[2] not in docs:
            expected = f"a query of {QUERIES} and a document of {DOCS} (files of the same release)"
            raise DataError(path, f"line {n}", expected, f"{f[0]} -> {f[2]}")
        if (f[0], f[2]) in seen:
            again = f"{f[0]} -> {f[2]} again"
            raise DataError(path, f"line {n}", "each (query, document) judged once", again)
        seen.add((f[0], f[2]))
        out.append(Judgment(f[0], f[2], int(f[3])))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> Nfcorpus:
    """The three files of the dev split."""
    docs = read_id_text(folder / DOCS, _DOC_ID, "MED-118")
    queries = read_id_text(folder / QUERIES, _QUERY_ID, "PLAIN-1")
    return Nfcorpus(docs, queries, read_qrels(folder / QRELS, queries, docs))


def build_test(data: Nfcorpus, without: frozenset[str] = frozenset()) -> Sets:
    """``nfcorpus_dev_queries/_corpus/_qrels``: every judged query, the whole corpus (one row per distinct
    text), the judgments with their grade (``relevance``), the highest where twins are merged.

    ``without``: text keys (:func:`medenc.data.leakage.key`) that equal a training text: such a query or
    document leaves the set, with its judgments (the build's ``retest``, see :attr:`Source.retest_equal`).
    """
    corpus_id: dict[str, str] = {}  # text key -> the corpus id of its first document
    merged: dict[str, str] = {}  # document id -> corpus id
    corpus_rows = []
    for doc_id, text in data.docs.items():
        k = leakage.key(text)
        if k in without:
            continue
        if k not in corpus_id:
            corpus_id[k] = doc_id
            corpus_rows.append({"id": doc_id, "text": text})
        merged[doc_id] = corpus_id[k]
    grade: dict[tuple[str, str], int] = {}  # (query id, corpus id) -> grade, in qrels order
    for j in data.qrels:
        if j.doc not in merged or leakage.key(data.queries[j.query]) in without:
            continue
        pair = (j.query, merged[j.doc])
        grade[pair] = max(grade.get(pair, 0), j.grade)
    judged = {q for q, _ in grade}
    query_rows = [{"id": q, "text": t} for q, t in data.queries.items() if q in judged]
    qrel_rows = [{"query_id": q, "corpus_id": c, "relevance": g} for (q, c), g in grade.items()]
    return {
        ("test", f"{NAME}_queries"): query_rows,
        ("test", f"{NAME}_corpus"): corpus_rows,
        ("test", f"{NAME}_qrels"): qrel_rows,
    }


def test_sets(data: Nfcorpus) -> TestYield:
    """The zero-shot lay question -> abstract retrieval test."""
    return TestYield(sets=build_test(data))


def manifest_info(data: Nfcorpus) -> dict[str, object]:
    """The manifest's NFCorpus counts (as read; the set's rows are in the manifest's ``sets``)."""
    return {
        "nfcorpus_dev_queries": len(data.queries),
        "nfcorpus_dev_docs": len(data.docs),
        "nfcorpus_dev_judgments": len(data.qrels),
    }


SOURCE = Source(
    info=SourceInfo(
        folder="nfcorpus_dev",
        name="NFCorpus (dev split)",
        license="academic use only (NFCorpus README: free for use for academic purposes)",
        role="test only (zero-shot): nfcorpus_dev lay question->abstract retrieval, graded relevance",
        url="https://github.com/hakimamarullah/medisearch-api",
        commit="0ae71a4bb2416506dbdd9a5f8894e7830b99f19f",
        attribution=(
            "Boteva et al., 2016, A Full-Text Learning to Rank Dataset for Medical Information Retrieval "
            "(NFCorpus; evaluation only, its text is not redistributed)"
        ),
        bibtex="""@inproceedings{boteva2016nfcorpus,
  title = {A Full-Text Learning to Rank Dataset for Medical Information Retrieval},
  author = {Boteva, Vera and Gholipour, Demian and Sokolov, Artem and Riezler, Stefan},
  booktitle = {Proceedings of the European Conference on Information Retrieval (ECIR)},
  publisher = {Springer},
  year = {2016}
}""",
    ),
    files=(DOCS, QUERIES, QRELS, "README.txt"),
    # @ 0ae71a4bb241 (folder data/nfcorpus/); dev.docs and the qrels end without a final newline upstream
    pins={
        DOCS: Pin("b7cf623af8f991e9d006d901a585234da65b0560a215e3bee85f884946b39751", 3193),
        QUERIES: Pin("548d2deef61bdc5a9db538f12679c503eb1b117c8ad7d8517493fdb4d5741ca6", 325),
        QRELS: Pin("bb7048b9c7b029da5fe3a6f537f8be6e9e291554997c6face817d99c993c6c75", 14589),
        "README.txt": Pin("191c16392f4e9edd9fdb4b9948192814df2e7a8d1f38b94c843b1ad0bb1c6780", 50),
    },
    read=read,
    test_sets=test_sets,
    retest=build_test,
    retest_equal=True,
    manifest_info=manifest_info,
)
