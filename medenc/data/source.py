"""What a data source declares: the one contract between a source module and the pipeline.

A source module under :mod:`medenc.data.sources` holds one :class:`Source` named ``SOURCE``: its folder and
files, their pins, its catalog entry (licence, role, upstream, citation), its reader, and what it yields (test
sets, contributions to the shared terms and concepts tests, training rows). The pipeline steps
(:mod:`medenc.data.read`, :mod:`~medenc.data.test_sets`, :mod:`~medenc.data.candidates`,
:mod:`~medenc.data.filters`, :mod:`~medenc.data.write`) iterate the registry and know no source by name.
This module also holds the records and split helpers more than one source uses.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core import layout
from medenc.data import leakage

Sets = dict[tuple[str, str], list[dict]]  # rows by (split, set name)
Dropped = dict[str, Counter]  # reason -> source (or set) -> rows dropped
Rows = dict[str, list[dict]]  # training rows by format (layout.GRADED_PAIRS, PAIRS, TRIPLETS)
# (query id, query, answer): one query of the shared terms test
TermQuery = tuple[str, str, str]

# The training formats and their text columns, in the order the prepared sets list them.
TEXT_FIELDS = {n: layout.COLUMNS[n] for n in (layout.GRADED_PAIRS, layout.PAIRS, layout.TRIPLETS)}

# Fraction of ontology concepts (DO diseases and HPO terms, by hash of the DOID / HP id, every name of a
# concept together) held out for the concepts test: about 1,300 lay phrasings and synonyms as queries.
CONCEPTS_TEST_FRACTION = 0.07


@dataclass(frozen=True)
class Pin:
    """The pinned sha256 of one upstream file (or MedQuAD subset folder) and its size in ``unit``."""

    sha256: str
    count: int | None = None  # lines of a text file, files of a folder; None for a binary file
    unit: str = "lines"


@dataclass(frozen=True)
class SourceInfo:
    """One raw source's catalog entry, keyed by its ``folder`` under the raw data root.

    ``url`` and ``commit`` mirror ``<folder>/SOURCE.txt``; the manifest reads those from SOURCE.txt itself, so
    that it records what was really on disk.
    """

    folder: str
    name: str  # display name (model card)
    license: str
    role: str  # which splits and sets it feeds; "test only" marks a source never trained on
    url: str  # upstream repository
    commit: str  # upstream commit of the copy under the raw data root
    attribution: str  # citation for the model card
    # The Hub dataset that holds the same data (checked: same rows and gold), "" where none does; the card's
    # `datasets:` metadata links it.
    hub_dataset: str = ""
    bibtex: str = ""  # the source's own citation, for the card's BibTeX section
    # The `source` values its training rows carry in the prepared sets (what recipes select by): the card
    # credits a source as trained on only where the run's record shows rows of one of them.
    row_sources: tuple[str, ...] = ()


@dataclass
class Concept:
    """One ontology concept. ``synonyms``: DO EXACT synonyms, or HPO layperson phrasings; ``parents``: ids."""

    id: str  # "DOID:0050012" or "HP:0002648": the unit of the concepts test split
    name: str
    synonyms: list[str] = field(default_factory=list)
    definition: str | None = None
    parents: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScoredPair:
    """A graded sentence pair; ``score`` is normalised to [0, 1]."""

    id: str
    sentence1: str
    sentence2: str
    score: float


@dataclass
class TestYield:
    """What a source gives the test step: its own test sets, and its part of the shared tests."""

    sets: Sets = field(default_factory=dict)
    terms: list[TermQuery] = field(default_factory=list)  # queries of the terms test (held out already)
    concepts: list[Concept] = field(default_factory=list)  # every concept, for the concepts test


@dataclass(frozen=True)
class Source:
    """One raw source, declared once: files, pins, catalog entry, reader and what it yields.

    ``read(folder, skips)`` parses the unmodified upstream files under the source's folder; what it returns is
    handed, as is, to ``test_sets``, ``training_rows`` and ``manifest_info``.
    """

    info: SourceInfo
    files: tuple[str, ...]  # what the folder must hold, for the missing-folder message
    pins: Mapping[str, Pin]  # path under the folder (or subset folder, see folder_pinned) -> pin
    read: Callable[[Path, Any], Any]  # (source folder, SkipLog) -> parsed records
    test_sets: Callable[[Any], TestYield] | None = None
    training_rows: Callable[[Any, Any], Rows] | None = None  # (records, SkipLog) -> rows by format
    # For a source whose test yields to training: templated test texts (MedQuAD), a test-only yardstick
    # (nfcorpus_dev). A test text covered by several training texts together leaves the test (its sets
    # rebuilt without the texts of these keys) instead of training rows being dropped, and its sets are not
    # checked for single-row near-duplicates.
    retest: Callable[[Any, frozenset[str]], Sets] | None = None
    # With ``retest``: a test text *equal* to a training text leaves the test too, instead of the training
    # rows. A test-only yardstick (nfcorpus_dev) must not change what trains, and its short queries ("liver
    # cancer", "glaucoma") are names the name sources train on.
    retest_equal: bool = False
    manifest_info: Callable[[Any], dict[str, object]] | None = None  # entries of the manifest's `info`
    glob: str = ""  # the files to hash when they are not exactly the pinned ones (e.g. "CSVs/*.csv")
    folder_pinned: bool = False  # pinned by one digest per subset folder (MedQuAD: 11k files)
    keep_identical_sides: bool = False  # its pairs with identical sides are data (STS-B: a score of 5)
    # Rows of sources sharing a group get their own validation draw and cap ("": the common one).
    validation_group: str = ""
    # The concepts it names, as (its own id, the names): joined across sources by shared names and held
    # out by group (:mod:`medenc.data.concept_groups`), so that no held-out name trains under any source.
    concept_names: Callable[[Any], Iterable[tuple[str, Iterable[str]]]] | None = None
    hold_by_id: bool = False  # its concepts' hold-out is decided by id (concept_held): DO and HPO
    # Test sets of its held-out concepts: (records, held(id) -> bool) -> sets.
    held_sets: Callable[[Any, Callable[[str], bool]], Sets] | None = None

    @property
    def folder(self) -> str:
        """The source's folder under the raw data root (its key everywhere)."""
        return self.info.folder


def bucket(stable_id: str) -> float:
    """A deterministic number in [0, 1) from sha256 of ``stable_id``."""
    return int.from_bytes(hashlib.sha256(stable_id.encode("utf-8")).digest()[:8], "big") / 2**64


def concept_held(concept_id: str) -> bool:
    """Whether an ontology concept (DOID / HP id) is held out for the concepts test, with all its names."""
    return bucket(f"concepts-test:{concept_id}") < CONCEPTS_TEST_FRACTION


def row(fmt: str, source: str, group: str, *texts: object) -> dict:
    """A training row of ``fmt`` from ``source``; ``group`` is its validation split unit (not written)."""
    out = dict(zip(layout.COLUMNS[fmt], texts, strict=True))
    out["source"] = source
    out["_group"] = f"{source}:{group}"  # internal: the validation split unit, removed before writing
    return out


def scored_rows(pairs: list[ScoredPair]) -> list[dict]:
    """Graded pairs as test rows (sentence1, sentence2, score)."""
    return [{"sentence1": p.sentence1, "sentence2": p.sentence2, "score": p.score} for p in pairs]


def query_sets(
    name: str, pairs: list[TermQuery], corpus_texts: list[str], id_prefix: str
) -> tuple[Sets, int]:
    """``<name>_queries/_corpus/_qrels`` from (query id, query, answer) and the corpus texts.

    The corpus holds each distinct text (by key) once; identical queries share one query (every answer of
    each relevant). A query equal to any corpus text is left out and counted (see build_terms_test).
    """
    corpus: dict[str, str] = {}  # text key -> corpus id
    corpus_rows = []
    for text in corpus_texts:
        k = leakage.key(text)
        if k not in corpus:
            corpus[k] = f"{id_prefix}{len(corpus_rows)}"
            corpus_rows.append({"id": corpus[k], "text": text})
    relevant: dict[str, set[str]] = defaultdict(set)  # query key -> corpus ids
    first: dict[str, tuple[str, str]] = {}  # query key -> (query id, text), first seen
    for qid, query, answer in pairs:
        qk = leakage.key(query)
        first.setdefault(qk, (qid, query))
        relevant[qk].add(corpus[leakage.key(answer)])
    query_rows, qrel_rows = [], []
    skipped = 0
    for qk, (qid, query) in first.items():
        if qk in corpus:
            skipped += 1
            continue
        query_rows.append({"id": qid, "text": query})
        qrel_rows += [{"query_id": qid, "corpus_id": c} for c in sorted(relevant[qk])]
    return {
        ("test", f"{name}_queries"): query_rows,
        ("test", f"{name}_corpus"): corpus_rows,
        ("test", f"{name}_qrels"): qrel_rows,
    }, skipped


def mark_distractors(sets: Sets, name: str, held_texts: Iterable[str]) -> Sets:
    """Flag ``<name>_corpus`` rows whose text is no held-out text as ``_distractor`` (not written): a corpus
    text of a concept that trains is no test text for the leakage checks. Returns ``sets``."""
    held = {leakage.key(t) for t in held_texts}
    for r in sets[("test", f"{name}_corpus")]:
        r["_distractor"] = leakage.key(r["text"]) not in held
    return sets
