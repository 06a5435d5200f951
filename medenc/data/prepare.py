"""Build every prepared set from the raw sources: ``python scripts/prepare_data.py`` (``make data``).

What it writes, under ``medenc.core.paths.prepared_dir()`` (layout in :mod:`medenc.core.layout`):

* ``train/`` and ``validation/``: ``graded_pairs`` (STS-B train+dev; RQE train as 1.0/0.0), ``pairs``
  (MedQuAD question->answer, MedQuAD synonym->focus, abbreviation->meaning, MeQSum CHQ->summary, RQE true
  chq->faq) and ``triplets`` (RQE: chq, a true faq of the same chq, a false faq);
* ``test/``: ``biosses``, ``stsb``, ``rqe``, ``medquad_{queries,corpus,qrels}``, ``pubmedqa_{...}``,
  ``terms_{...}`` (held-out abbreviation -> meaning, synonym -> focus), ``triplets``;
* ``manifest.json`` (each source's licence and role from :mod:`medenc.data.catalog`) and
  ``leakage_report.json``.

Decisions (also recorded in the manifest under ``notes``):

* Every split is chosen by sha256 of a stable id, never by a random shuffle, so two runs give the same rows
  in the same order.
* MedQuAD synonyms are used in one direction only, (synonym -> focus): with both directions an in-batch
  negatives loss would see the anchor's own text as a negative of its mirror pair.
* Pairs whose two sides are identical (case-insensitively) teach nothing and are dropped (counted).
* Training rows with a field equal to any test text are dropped before the leakage guard (counted per
  source); then the guard must pass, else nothing is written into place.
* The folder is written to a temporary sibling and renamed into place at the end; on a leakage failure it is
  renamed to ``<prepared>.failed/`` (with the report) and the previous prepared folder is left untouched.
* Every raw file is hashed and checked against :mod:`medenc.data.pins` before anything is parsed: a file that
  differs stops the build unless ``--accept-upstream``, which records the differing files in the manifest
  (``upstream_accepted``; absent otherwise, so that the manifest of the pinned data keeps its bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError, LeakageError, MedencError, fail
from medenc.core.io import sha256_file
from medenc.core.paths import data_dir, prepared_dir
from medenc.core.progress import progress
from medenc.data import leakage, ontologies, pins, sources
from medenc.data.catalog import CATALOG

# Fraction of MedQuAD answered documents (subsets 1-9) held out for the retrieval test, by hash of the
# document's topic (see _topic). 0.05 gives ~500 answers after removing templated ones: a corpus that
# evaluation can embed quickly on a CPU.
MEDQUAD_TEST_FRACTION = 0.05
VALIDATION_FRACTION = 0.02
VALIDATION_CAP = 300  # rows per format: validation is a loss sanity check, not a benchmark
TEST_TRIPLETS_CAP = 500
# Fraction of abbreviations (by hash of the normalised abbreviation, all its meanings together) held out of
# training for the terms test: about 400 abbreviations, enough for a CI of a few points on a 2-core budget.
TERMS_ABBREVIATION_FRACTION = 0.1
# Fraction of ontology concepts (DO diseases and HPO terms, by hash of the DOID / HP id, every name of a
# concept together) held out for the concepts test: about 1,300 lay phrasings and synonyms as queries.
CONCEPTS_TEST_FRACTION = 0.07
ONTOLOGY_SOURCES = frozenset({"do_synonym", "do_definition", "hpo_lay", "do_sibling"})
MEDQUAD_TEST_SETS = frozenset({"medquad_queries", "medquad_corpus", "triplets"})

NOTES = [
    "splits by sha256 of stable ids; no random shuffles",
    "MedQuAD test/validation held out by whole document (id = subset folder/file stem)",
    "MedQuAD synonym pairs: one direction, anchor=synonym, positive=focus",
    "MedQuAD QAPairs with an empty <Answer> (subsets 10-12, five GARD docs) are not pairs",
    "RQE false pairs become triplets (chq, first true faq of the same chq by pid that differs from the chq, "
    "false faq); skipped if none",
    "abbreviation rows grouped by abbreviation for the validation split",
    "terms test: abbreviations held out by hash of the normalised abbreviation (all meanings together), "
    "plus the synonyms of the held-out MedQuAD documents; queries are abbreviations and synonyms, the corpus "
    "their meanings and focuses",
    "concepts test: DO diseases and HPO terms held out by hash of their id (every name of a concept "
    "together); queries are their EXACT synonyms and lay phrasings, the corpus every DO and HPO preferred "
    "name; only the held-out concepts' names are test texts for the leakage checks (the rest: distractors)",
    "ontology training rows: do_synonym (EXACT synonym -> name), do_definition (name -> definition), "
    "hpo_lay (lay phrasing -> label), do_sibling triplets (synonym, name, the name of a sibling sharing a "
    "parent, chosen by hash)",
    "pairs with identical sides dropped; exact duplicate rows removed within each set",
    "training rows with a field equal to a test text (lowercased, whitespace collapsed) are dropped",
    "training rows with a field that alone contains > threshold of a test text's word 8-grams are dropped",
    "MedQuAD test documents are chosen by hash of their normalised focus (fallback: document id), so "
    "that the same topic in two subsets (e.g. GARD and GHR) is held out together",
    "MedQuAD test QAs whose text is > threshold covered by all training texts together (templated answers) "
    "are removed from the test; for other test sets, training rows sharing an 8-gram with such a text "
    "are dropped",
]

TEXT_FIELDS = {n: layout.COLUMNS[n] for n in (layout.GRADED_PAIRS, layout.PAIRS, layout.TRIPLETS)}


def bucket(stable_id: str) -> float:
    """A deterministic number in [0, 1) from sha256 of ``stable_id``."""
    return int.from_bytes(hashlib.sha256(stable_id.encode("utf-8")).digest()[:8], "big") / 2**64


Sets = dict[tuple[str, str], list[dict]]  # rows by (split, set name)
Dropped = dict[str, Counter]  # reason -> source (or set) -> rows dropped


@dataclass
class Prepared:
    """Everything prepare builds in memory before writing: sets by (split, name), plus manifest parts."""

    sets: Sets = field(default_factory=dict)
    raw_files: dict[str, str] = field(default_factory=dict)
    upstream_accepted: dict[str, str | None] = field(default_factory=dict)  # pin key -> found sha256
    dropped: Dropped = field(default_factory=lambda: defaultdict(Counter))
    info: dict[str, object] = field(default_factory=dict)
    leakage_report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RawSources:
    """Every source as parsed by :mod:`medenc.data.sources`."""

    stsb: dict[str, list[sources.ScoredPair]]
    biosses: list[sources.ScoredPair]
    medquad: list[sources.MedquadDoc]
    pubmed: dict[str, sources.PubmedqaItem]
    pubmed_test: list[str]
    rqe: dict[str, list[sources.RqePair]]
    meqsum: list[sources.MeqsumRow]
    abbrevs: list[sources.AbbreviationRow]
    diseases: list[ontologies.Concept]
    phenotypes: list[ontologies.Concept]


# --- building: the steps, in the order build() runs them ---------------------------------------------------
def build(
    root: Path, threshold: float = leakage.DEFAULT_THRESHOLD, accept_upstream: bool = False
) -> Prepared:
    """Check the raw files against their pins, read every source under ``root`` and build all sets in
    memory; run the leakage guard."""
    out = Prepared()
    skips = sources.SkipLog()
    out.raw_files, out.upstream_accepted = check_raw_files(root, accept_upstream)
    raw = read_sources(root, skips)
    out.sets, held_docs = build_test_sets(raw, out.dropped)
    cand = training_candidates(raw, held_docs, skips)
    cand = filter_candidates(cand, out.sets, threshold, out.dropped)
    cand = resplit_covered(cand, out.sets, raw.medquad, held_docs, threshold, out.dropped)
    split_train_validation(cand, out.sets)
    out.dropped["skipped upstream quirks"] = Counter(skips.counts)
    out.info = _info(raw.medquad, held_docs)
    leakage_guard(out, threshold)
    return out


def check_raw_files(
    root: Path, accept_upstream: bool = False
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Hash every raw file and compare with :data:`medenc.data.pins.PINS`, before any parsing or writing.

    Returns (sha256 by raw file, the pinned entries that differ). A difference raises a DataError unless
    ``accept_upstream``: a truncated or changed file must never quietly become a smaller data set.
    """
    # Every folder first: a missing one is reported as such, not as each of its files differing from a pin.
    for name in sources.SOURCE_FILES:
        sources.source_dir(root, name)
    raw_files = hash_raw_files(root)
    diffs = pins.differences(raw_files)
    if diffs and not accept_upstream:
        raise pins.mismatch_error(root, diffs, raw_files)
    return raw_files, diffs


def read_sources(root: Path, skips: sources.SkipLog) -> RawSources:
    """Parse every source (after :func:`check_raw_files`, which checks that every folder exists)."""
    stsb = sources.read_stsb(root)
    biosses = sources.read_biosses(root)
    medquad = sources.read_medquad(root)
    pubmed, pubmed_test = sources.read_pubmedqa(root)
    rqe = sources.read_rqe(root, skips)
    meqsum = sources.read_meqsum(root)
    abbrevs = sources.read_abbreviations(root)
    diseases = ontologies.read_disease_ontology(root, skips)
    phenotypes = ontologies.read_hpo_layperson(root)
    return RawSources(stsb, biosses, medquad, pubmed, pubmed_test, rqe, meqsum, abbrevs, diseases, phenotypes)


def hash_raw_files(root: Path) -> dict[str, str]:
    """sha256 of every raw file read (and each SOURCE.txt), keyed by path relative to ``root``."""
    files = [root / "stsbenchmark" / f for f in sources.SOURCE_FILES["stsbenchmark"]]
    files += [root / "biosses" / f for f in sources.SOURCE_FILES["biosses"]]
    files += sorted((root / "medquad").glob("*_*/*.xml"))
    files += [root / "pubmedqa" / f for f in sources.SOURCE_FILES["pubmedqa"]]
    files += [root / "rqe_amia2016" / f for f in sources.SOURCE_FILES["rqe_amia2016"]]
    files += [root / "meqsum" / f for f in sources.SOURCE_FILES["meqsum"]]
    files += sorted((root / "medical_abbreviations" / "CSVs").glob("*.csv"))
    for name in (ontologies.DO_FOLDER, ontologies.HPO_FOLDER):
        files += [root / name / f for f in sources.SOURCE_FILES[name]]
    files += [root / n / "SOURCE.txt" for n in sources.SOURCE_FILES]
    # A missing file is left out: the pin check names it, or (with --accept-upstream) its adapter does.
    files = [f for f in files if f.is_file()]
    hashed = progress(files, desc="hashing raw files", unit="files")  # MedQuAD alone has 11k files
    return {str(f.relative_to(root)): sha256_file(f) for f in hashed}


def build_test_sets(raw: RawSources, dropped: Dropped) -> tuple[Sets, set[str]]:
    """Every test set, exact duplicate rows removed; also returns the held-out MedQuAD document ids."""
    sets: Sets = {}
    sets[("test", "biosses")] = _scored_rows(raw.biosses)
    sets[("test", "stsb")] = _scored_rows(raw.stsb["test"])
    sets[("test", "rqe")] = [
        {"sentence1": p.chq, "sentence2": p.faq, "label": p.label} for p in raw.rqe["test"]
    ]
    held_docs, mq_sets = build_medquad_test(raw.medquad)
    sets.update(mq_sets)
    sets[("test", "pubmedqa_queries")] = [{"id": i, "text": raw.pubmed[i].question} for i in raw.pubmed_test]
    sets[("test", "pubmedqa_corpus")] = [{"id": i, "text": raw.pubmed[i].abstract} for i in raw.pubmed_test]
    sets[("test", "pubmedqa_qrels")] = [{"query_id": i, "corpus_id": i} for i in raw.pubmed_test]
    terms_sets, skipped = build_terms_test(raw.medquad, held_docs, raw.abbrevs)
    sets.update(terms_sets)
    dropped["test: terms queries equal to a corpus text"]["terms"] = skipped
    concept_sets, skipped = build_concepts_test(raw.diseases, raw.phenotypes)
    sets.update(concept_sets)
    dropped["test: concepts queries equal to a corpus text"]["concepts"] = skipped
    for (split, name), rows in list(sets.items()):
        if split == "test" and not name.endswith("_qrels"):
            sets[(split, name)], dups = _dedupe(rows, tuple(rows[0]) if rows else ())
            if dups:
                dropped["test_duplicate_rows"][name] += len(dups)
    return sets, held_docs


def training_candidates(
    raw: RawSources, held_docs: set[str], skips: sources.SkipLog
) -> dict[str, list[dict]]:
    """Every training row by format, before any filtering; held-out documents and abbreviations left out."""
    graded = _stsb_candidates(raw.stsb)
    pairs = _medquad_candidates(raw.medquad, held_docs, skips) + _abbreviation_candidates(raw.abbrevs)
    pairs += [_row(layout.PAIRS, "meqsum", m.file, m.chq, m.summary) for m in raw.meqsum]
    rqe_graded, rqe_pairs, rqe_triplets = _rqe_candidates(raw.rqe["train"], skips)
    onto_pairs, onto_triplets = _ontology_candidates(raw.diseases, raw.phenotypes)
    return {
        layout.GRADED_PAIRS: graded + rqe_graded,
        layout.PAIRS: pairs + rqe_pairs + onto_pairs,
        layout.TRIPLETS: rqe_triplets + onto_triplets,
    }


def filter_candidates(
    cand: dict[str, list[dict]], sets: Sets, threshold: float, dropped: Dropped
) -> dict[str, list[dict]]:
    """Drop rows with identical sides, rows equal to or near-duplicating a test text, and duplicate rows."""
    by_set = _test_texts_by_set(sets)
    test_keys = {leakage.key(t) for texts in by_set.values() for t in texts}
    # Near-duplicates of the fixed benchmarks are removed from training; MedQuAD test items covered by
    # training are removed from the test instead (resplit_covered): its answers are templated, so dropping
    # every training answer sharing a boilerplate paragraph would discard thousands of good rows.
    fixed_tests = [t for name, texts in by_set.items() if name not in MEDQUAD_TEST_SETS for t in texts]
    out = {}
    for fmt, rows in cand.items():
        cols = TEXT_FIELDS[fmt]
        kept = _drop_identical_sides(fmt, rows, dropped)
        kept, equal = leakage.drop_exact(kept, cols, test_keys)
        for r in equal:
            dropped[f"{fmt}: equals a test text"][r["source"]] += 1
        kept = _drop_flagged(fmt, kept, fixed_tests, threshold, "near-duplicate of a test text", dropped)
        kept, dups = _dedupe(kept, layout.COLUMNS[fmt])
        for r in dups:
            dropped[f"{fmt}: duplicate row"][r["source"]] += 1
        out[fmt] = kept
    return out


def resplit_covered(
    cand: dict[str, list[dict]],
    sets: Sets,
    medquad: list[sources.MedquadDoc],
    held_docs: set[str],
    threshold: float,
    dropped: Dropped,
) -> dict[str, list[dict]]:
    """Resolve test texts covered by several training texts together (union containment).

    MedQuAD answers are heavily templated (GHR inheritance paragraphs, CancerGov test lists), so a held-out
    answer can be covered by several training answers together. Such test items are removed from the MedQuAD
    test (not a fair retrieval target): its sets in ``sets`` are rebuilt without them. For the fixed
    benchmarks the training rows sharing any 8-gram with the offending test text are dropped instead.
    """
    pool = [t for fmt, rows in cand.items() for t in _training_texts(fmt, rows)]
    rep = leakage.check_leakage(_test_texts_by_set(sets), pool, threshold, raise_error=False)
    bad_mq = frozenset(
        leakage.key(o["test_text"]) for o in rep["examples"] if o["test_set"] in MEDQUAD_TEST_SETS
    )
    bad_other = sorted({o["test_text"] for o in rep["examples"] if o["test_set"] not in MEDQUAD_TEST_SETS})
    if bad_mq:
        before = len(sets[("test", "medquad_qrels")])
        held_again, mq_sets = build_medquad_test(medquad, bad_mq)
        assert held_again == held_docs  # the exclusion removes QAs from the test, never documents
        sets.update(mq_sets)
        removed = before - len(mq_sets[("test", "medquad_qrels")])
        dropped["test: medquad QA removed (templated text covered by training)"]["medquad"] = removed
    if not bad_other:
        return cand
    reason = "shares 8-grams with a covered test text"
    return {fmt: _drop_flagged(fmt, rows, bad_other, 0.0, reason, dropped) for fmt, rows in cand.items()}


def split_train_validation(cand: dict[str, list[dict]], sets: Sets) -> None:
    """Add each format's train and validation sets to ``sets`` (validation: whole groups, by hash)."""
    for fmt, rows in cand.items():
        # The ontology sources get their own validation draw and cap: adding them leaves the validation rows
        # of the other sources (and so what existing recipes train on) as they were.
        parts = [[r for r in rows if (r["source"] in ONTOLOGY_SOURCES) == onto] for onto in (False, True)]
        (train, val), (onto_train, onto_val) = (_split_validation(part) for part in parts)
        sets[("train", fmt)], sets[("validation", fmt)] = train + onto_train, val + onto_val


def leakage_guard(out: Prepared, threshold: float) -> None:
    """Check the final training and validation sets against every test set; store the report in ``out``.

    On failure the LeakageError carries ``out`` as ``.prepared``, so that prepare can write it aside.
    """
    train_texts = (
        t
        for split in layout.TRAIN_SPLITS
        for fmt in TEXT_FIELDS
        for t in _training_texts(fmt, out.sets[(split, fmt)])
    )
    try:
        out.leakage_report = leakage.check_leakage(_test_texts_by_set(out.sets), train_texts, threshold)
    except LeakageError as e:
        out.leakage_report = e.report  # type: ignore[attr-defined]
        e.prepared = out  # type: ignore[attr-defined]
        raise


def _info(medquad: list[sources.MedquadDoc], held_docs: set[str]) -> dict[str, object]:
    """The manifest's ``info``: MedQuAD counts and the split parameters."""
    return {
        "medquad_documents": len(medquad),
        "medquad_variant_schema_documents": sum(d.variant_schema for d in medquad),
        "medquad_qapairs": sum(len(d.qa) for d in medquad),
        "medquad_qapairs_with_answer": sum(1 for d in medquad for q in d.qa if q.answer),
        "medquad_test_documents": len(held_docs),
        "medquad_test_fraction": MEDQUAD_TEST_FRACTION,
        "validation_fraction": VALIDATION_FRACTION,
        "validation_cap_per_format": VALIDATION_CAP,
    }


# --- building: test sets ------------------------------------------------------------------------------------
def _scored_rows(pairs: list[sources.ScoredPair]) -> list[dict]:
    return [{"sentence1": p.sentence1, "sentence2": p.sentence2, "score": p.score} for p in pairs]


def _topic(doc: sources.MedquadDoc) -> str:
    """The held-out unit of a MedQuAD document: its normalised focus, else its id (empty focus)."""
    return leakage.key(doc.focus) if doc.focus else doc.doc_id


def build_medquad_test(
    docs: list[sources.MedquadDoc], exclude: frozenset[str] = frozenset()
) -> tuple[set[str], dict[tuple[str, str], list[dict]]]:
    """Hold out MedQuAD documents (answered, subsets 1-9) by hash; build the retrieval and triplet test sets.

    QAPairs whose question or answer key is in ``exclude`` (templated text also found in training) are left
    out of the test sets; their documents stay held out of training.
    """
    held = [
        d
        for d in docs
        if d.subset <= 9
        and any(q.answer for q in d.qa)
        and bucket(f"medquad-test:{_topic(d)}") < MEDQUAD_TEST_FRACTION
    ]
    corpus: dict[str, str] = {}  # answer key -> corpus id
    corpus_rows, query_rows = [], []
    query_index: dict[str, str] = {}  # question key -> query id (identical questions share a query)
    qrels: set[tuple[str, str]] = set()
    triplets = []
    for d in held:
        # Ids are "<doc id>#<QAPair position>": upstream qids repeat across (and within) subset folders.
        answered = [
            (f"{d.doc_id}#{n}", q)
            for n, q in enumerate(d.qa, start=1)
            if q.answer and not {leakage.key(q.answer), leakage.key(q.question)} & exclude
        ]
        for i, (uid, q) in enumerate(answered):
            ak = leakage.key(q.answer)
            if ak not in corpus:
                corpus[ak] = uid
                corpus_rows.append({"id": corpus[ak], "text": q.answer})
            qk = leakage.key(q.question)
            if qk not in query_index:
                query_index[qk] = uid
                query_rows.append({"id": query_index[qk], "text": q.question})
            qrels.add((query_index[qk], corpus[ak]))
            # Hard negative: the next answer of the same document (cyclic) whose text differs.
            for j in range(1, len(answered)):
                neg = answered[(i + j) % len(answered)][1].answer
                if leakage.key(neg) != ak:
                    triplets.append((bucket(f"medquad-triplet:{uid}"), q.question, q.answer, neg))
                    break
    triplets.sort(key=lambda t: t[0])
    trip_rows = [{"anchor": a, "positive": p, "negative": n} for _, a, p, n in triplets[:TEST_TRIPLETS_CAP]]
    qrel_rows = [{"query_id": q, "corpus_id": c} for q, c in sorted(qrels)]
    return {d.doc_id for d in held}, {
        ("test", "medquad_queries"): query_rows,
        ("test", "medquad_corpus"): corpus_rows,
        ("test", "medquad_qrels"): qrel_rows,
        ("test", "triplets"): trip_rows,
    }


def _abbreviation_held(abbreviation: str) -> bool:
    return bucket(f"terms-test:{leakage.key(abbreviation)}") < TERMS_ABBREVIATION_FRACTION


def build_terms_test(
    docs: list[sources.MedquadDoc], held_docs: set[str], abbrevs: list[sources.AbbreviationRow]
) -> tuple[dict[tuple[str, str], list[dict]], int]:
    """The terms retrieval test: held-out abbreviation -> its meanings, held-out document's synonym -> focus.

    This is the set that asks the project's own question ("MI" next to "heart attack"). Queries share one
    corpus of every held-out meaning and focus. A query whose text equals an unrelated corpus text would rank
    that text first for free, and one equal to its own answer is trivial: both are left out (and counted).
    """
    pairs: list[tuple[str, str, str]] = []  # (query id, query, answer)
    for a in abbrevs:
        if _abbreviation_held(a.abbreviation):
            pairs.append((f"abbreviation:{leakage.key(a.abbreviation)}", a.abbreviation, a.meaning))
    for d in docs:
        if d.doc_id in held_docs and d.focus:
            pairs.extend((f"synonym:{d.doc_id}#{n}", s, d.focus) for n, s in enumerate(d.synonyms, start=1))
    return _query_sets("terms", pairs, [answer for _, _, answer in pairs], "t")


def _query_sets(
    name: str, pairs: list[tuple[str, str, str]], corpus_texts: list[str], id_prefix: str
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


def concept_held(concept_id: str) -> bool:
    """Whether an ontology concept (DOID / HP id) is held out for the concepts test, with all its names."""
    return bucket(f"concepts-test:{concept_id}") < CONCEPTS_TEST_FRACTION


def build_concepts_test(
    diseases: list[ontologies.Concept], phenotypes: list[ontologies.Concept]
) -> tuple[Sets, int]:
    """The concepts retrieval test: a held-out concept's synonym or lay phrasing -> its preferred name.

    The corpus is every DO and HPO preferred name, so the held-out names sit among thousands of distractors.
    Corpus rows carry ``_distractor`` (not written): a name of no held-out concept is no test text for the
    leakage checks, since training on the concepts that are not held out is the point. A name shared with
    a held-out concept (as its name or synonym) is a test text, so every held-out name leaves training.
    """
    concepts = [*diseases, *phenotypes]
    held = [c for c in concepts if concept_held(c.id)]
    pairs = [(f"{c.id}#{n}", s, c.name) for c in held for n, s in enumerate(c.synonyms, start=1)]
    sets, skipped = _query_sets("concepts", pairs, [c.name for c in concepts], "c")
    held_names = {leakage.key(t) for c in held for t in (c.name, *c.synonyms)}
    for r in sets[("test", "concepts_corpus")]:
        r["_distractor"] = leakage.key(r["text"]) not in held_names
    return sets, skipped


# --- building: training candidates and filters --------------------------------------------------------------
def _row(fmt: str, source: str, group: str, *texts: object) -> dict:
    row = dict(zip(layout.COLUMNS[fmt], texts, strict=True))
    row["source"] = source
    row["_group"] = f"{source}:{group}"  # internal: the validation split unit, removed before writing
    return row


def _stsb_candidates(stsb: dict[str, list[sources.ScoredPair]]) -> list[dict]:
    """STS-B train and dev as graded pairs (the test split is the stsb test set)."""
    rows = []
    for split in ("train", "dev"):
        for p in stsb[split]:
            grp = f"{leakage.key(p.sentence1)}\t{leakage.key(p.sentence2)}"
            rows.append(_row(layout.GRADED_PAIRS, "stsb", grp, p.sentence1, p.sentence2, p.score))
    return rows


def _medquad_candidates(
    medquad: list[sources.MedquadDoc], held_docs: set[str], skips: sources.SkipLog
) -> list[dict]:
    """Question->answer and synonym->focus pairs of the documents not held out for the test."""
    rows = []
    for d in medquad:
        if d.doc_id in held_docs:
            continue
        for q in d.qa:
            if q.answer:
                rows.append(_row(layout.PAIRS, "medquad_qa", d.doc_id, q.question, q.answer))
        if d.focus:
            for s in d.synonyms:
                rows.append(_row(layout.PAIRS, "medquad_synonym", d.doc_id, s, d.focus))
        elif d.synonyms:
            skips.add("medquad: synonyms of a document with an empty <Focus>", len(d.synonyms))
    return rows


def _abbreviation_candidates(abbrevs: list[sources.AbbreviationRow]) -> list[dict]:
    """Abbreviation->meaning pairs of the abbreviations not held out for the terms test."""
    return [
        _row(layout.PAIRS, "medical_abbreviations", leakage.key(a.abbreviation), a.abbreviation, a.meaning)
        for a in abbrevs
        if not _abbreviation_held(a.abbreviation)
    ]


def _ontology_candidates(
    diseases: list[ontologies.Concept], phenotypes: list[ontologies.Concept]
) -> tuple[list[dict], list[dict]]:
    """(pairs, triplets) of the ontology concepts not held out for the concepts test."""
    train_do = [c for c in diseases if not concept_held(c.id)]
    pairs = []
    for c in train_do:
        pairs += [_row(layout.PAIRS, "do_synonym", c.id, s, c.name) for s in c.synonyms]
        if c.definition:
            pairs.append(_row(layout.PAIRS, "do_definition", c.id, c.name, c.definition))
    for c in phenotypes:
        if not concept_held(c.id):
            pairs += [_row(layout.PAIRS, "hpo_lay", c.id, s, c.name) for s in c.synonyms]
    return pairs, _sibling_triplets(train_do)


def _sibling_triplets(diseases: list[ontologies.Concept]) -> list[dict]:
    """(EXACT synonym, name, a sibling's name) per synonym: a sibling shares a parent and has another name.

    The sibling is the one with the lowest hash (stable), among ``diseases`` only: a held-out disease's name
    must not become a training negative. (name, name, sibling) would have identical sides, so a disease
    without an EXACT synonym gives no triplet.
    """
    children: dict[str, list[ontologies.Concept]] = defaultdict(list)  # parent id -> its diseases
    for c in diseases:
        for parent in c.parents:
            children[parent].append(c)
    rows = []
    for c in diseases:
        sibs = [s for p in c.parents for s in children[p] if leakage.key(s.name) != leakage.key(c.name)]
        if not sibs or not c.synonyms:
            continue
        neg = min(sibs, key=lambda s: bucket(f"do-sibling:{c.id}:{s.id}"))
        rows += [_row(layout.TRIPLETS, "do_sibling", c.id, syn, c.name, neg.name) for syn in c.synonyms]
    return rows


def _rqe_candidates(
    train: list[sources.RqePair], skips: sources.SkipLog
) -> tuple[list[dict], list[dict], list[dict]]:
    """RQE train as (graded pairs, pairs, triplets)."""
    graded, pairs, triplets = [], [], []
    # chq key -> faq of the first true pair (pid order) whose text differs from the chq: a positive equal to
    # the anchor would make the triplet trivial.
    true_faq: dict[str, str] = {}
    for p in train:
        # Every labelled RQE pair is also a graded pair (entailed 1.0, not entailed 0.0): the only
        # in-domain labelled pairs, so a ranking loss (CoSENT) in phase 1 can learn the RQE boundary itself.
        graded.append(_row(layout.GRADED_PAIRS, "rqe", leakage.key(p.chq), p.chq, p.faq, float(p.label)))
        if p.label:
            pairs.append(_row(layout.PAIRS, "rqe", leakage.key(p.chq), p.chq, p.faq))
            if leakage.key(p.faq) != leakage.key(p.chq):
                true_faq.setdefault(leakage.key(p.chq), p.faq)
    for p in train:
        if not p.label:
            pos = true_faq.get(leakage.key(p.chq))
            if pos is None:
                skips.add("rqe: false pair without a distinct true faq for its chq (no triplet)")
                continue
            triplets.append(_row(layout.TRIPLETS, "rqe", leakage.key(p.chq), p.chq, pos, p.faq))
    return graded, pairs, triplets


def _drop_identical_sides(fmt: str, rows: list[dict], dropped: Dropped) -> list[dict]:
    """The rows whose first two text fields differ (case- and whitespace-insensitively)."""
    cols = TEXT_FIELDS[fmt]
    kept = []
    for r in rows:
        # STS-B keeps its identical pairs (a score of 5 on the benchmark's own scale); elsewhere identical
        # sides teach nothing.
        same = leakage.key(r[cols[0]]) == leakage.key(r[cols[1]])
        if same and not (fmt == layout.GRADED_PAIRS and r["source"] == "stsb"):
            dropped[f"{fmt}: identical sides"][r["source"]] += 1
        else:
            kept.append(r)
    return kept


def _drop_flagged(
    fmt: str, rows: list[dict], test_texts: list[str], threshold: float, reason: str, dropped: Dropped
) -> list[dict]:
    """The rows none of whose text fields alone holds > ``threshold`` of a test text's 8-grams."""
    flags = [False] * len(rows)
    for c in TEXT_FIELDS[fmt]:
        col_flags = leakage.flag_near([str(r[c]) for r in rows], test_texts, threshold)
        flags = [a or b for a, b in zip(flags, col_flags, strict=True)]
    kept = []
    for r, bad in zip(rows, flags, strict=True):
        if bad:
            dropped[f"{fmt}: {reason}"][r["source"]] += 1
        else:
            kept.append(r)
    return kept


def _dedupe(rows: list[dict], cols: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """(first occurrence of each row by ``cols``, the later duplicates)."""
    seen: set[tuple] = set()
    kept, dups = [], []
    for r in rows:
        k = tuple(r[c] for c in cols)
        if k in seen:
            dups.append(r)
        else:
            seen.add(k)
            kept.append(r)
    return kept, dups


def _split_validation(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Whole groups with hash < VALIDATION_FRACTION go to validation, lowest hash first, up to the cap."""
    sizes = Counter(r["_group"] for r in rows)
    cands = sorted((b, g) for g in sizes if (b := bucket(f"validation:{g}")) < VALIDATION_FRACTION)
    chosen: set[str] = set()
    total = 0
    for _, g in cands:
        if total + sizes[g] <= VALIDATION_CAP:
            chosen.add(g)
            total += sizes[g]
    train = [r for r in rows if r["_group"] not in chosen]
    val = [r for r in rows if r["_group"] in chosen]
    return train, val


def _texts_of(rows: list[dict]) -> Iterator[str]:
    """The text fields of test rows; a distractor (a corpus text held out for no query) is no test text."""
    for r in rows:
        if r.get("_distractor"):
            continue
        for k, v in r.items():
            if k in ("sentence1", "sentence2", "anchor", "positive", "negative", "text"):
                yield v


def _test_texts_by_set(sets: Sets) -> dict[str, list[str]]:
    """Test set name -> its texts, as the leakage checks take them."""
    return {name: list(_texts_of(rows)) for (split, name), rows in sets.items() if split == "test"}


def _training_texts(fmt: str, rows: list[dict]) -> Iterator[tuple[str, str]]:
    """(source, text) of every text field of ``fmt`` rows, as the leakage checks take them."""
    for r in rows:
        for c in TEXT_FIELDS[fmt]:
            yield r["source"], str(r[c])


# --- writing ------------------------------------------------------------------------------------------------
def _features(columns: list[str]) -> object:
    """The datasets Features for these columns (explicit, so that empty sets keep their types)."""
    from datasets import Features, Value

    cols = {
        "sentence1": Value("string"),
        "sentence2": Value("string"),
        "score": Value("float64"),
        "label": Value("int64"),
        "anchor": Value("string"),
        "positive": Value("string"),
        "negative": Value("string"),
        "source": Value("string"),
        "id": Value("string"),
        "text": Value("string"),
        "query_id": Value("string"),
        "corpus_id": Value("string"),
    }
    return Features({c: cols[c] for c in columns})


def _counts(prep: Prepared) -> dict:
    counts: dict[str, dict] = {}
    for (split, name), rows in sorted(prep.sets.items()):
        by_source = Counter(r["source"] for r in rows if "source" in r)
        entry: dict[str, object] = {"rows": len(rows)}
        if by_source:
            entry["by_source"] = dict(sorted(by_source.items()))
        counts.setdefault(split, {})[name] = entry
    return counts


def make_manifest(prep: Prepared, root: Path) -> dict:
    """The manifest: counts per split/set/source, drops, raw file hashes, provenance, leakage summary."""
    srcs = {}
    for name, info in CATALOG.items():
        st = sources.read_source_txt(root, name)
        # url and commit come from SOURCE.txt (what is on disk), not from the catalog (what is expected).
        srcs[name] = {
            "license": info.license,
            "license_upstream_note": st.get("license", ""),
            "role": info.role,
            "url": st.get("source", ""),
            "commit": st.get("commit", ""),
        }
    rep = prep.leakage_report
    manifest = {
        "format": 1,
        "sets": _counts(prep),
        "dropped": {k: dict(sorted(v.items())) for k, v in sorted(prep.dropped.items())},
        "info": prep.info,
        "notes": NOTES,
        "leakage": {k: rep.get(k) for k in ("threshold", "ngram", "offenders", "max_containment", "passed")},
        "sources": srcs,
        "raw_files_sha256": dict(sorted(prep.raw_files.items())),
    }
    # Only when some file differs from its pin: the manifest of the pinned data keeps its bytes (its hash
    # identifies the data every run was trained and evaluated on).
    if prep.upstream_accepted:
        manifest["upstream_accepted"] = dict(sorted(prep.upstream_accepted.items()))
    return manifest


def write(prep: Prepared, root: Path, target: Path, failed: bool = False) -> Path:
    """Write all sets, the manifest and the leakage report into a temp folder, then rename it into place.

    With ``failed`` the folder goes to ``<target>.failed`` instead and ``target`` is left untouched.
    """
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()  # one bar per set would drown the counts table
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for (split, name), rows in prep.sets.items():
            cols = [c for c in (rows[0] if rows else _empty_columns(name)) if not c.startswith("_")]
            data = {c: [r[c] for r in rows] for c in cols}
            Dataset.from_dict(data, features=_features(cols)).save_to_disk(str(tmp / split / name))
        _write_json(tmp / layout.MANIFEST, make_manifest(prep, root))
        _write_json(tmp / layout.LEAKAGE_REPORT, prep.leakage_report)
        final = target.parent / f"{target.name}.failed" if failed else target
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_json(path: Path, data: object) -> None:
    """JSON as the data layer has always written it (indent 1, UTF-8 as is, no final newline).

    Not medenc.core.io.write_json (indent 2, ASCII escapes, final newline, atomic rename): the manifest's
    bytes are its identity (medenc.data.manifest_hash, recorded by every run), so its format must not change;
    atomicity comes from renaming the whole folder into place.
    """
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _empty_columns(name: str) -> tuple[str, ...]:
    if name in TEXT_FIELDS:
        return (*layout.COLUMNS[name], "source")
    raise DataError(name, None, "a non-empty set", "no rows")


def prepare(
    target: Path | None = None,
    threshold: float = leakage.DEFAULT_THRESHOLD,
    accept_upstream: bool = False,
) -> tuple[Path, dict]:
    """Build and write everything; return (prepared folder, manifest). Raises DataError or LeakageError.

    ``accept_upstream``: use raw files that differ from their pins (a newer upstream, on purpose).
    """
    root = data_dir()
    target = Path(target) if target is not None else prepared_dir()
    try:
        prep = build(root, threshold, accept_upstream)
    except LeakageError as e:
        where = write(e.prepared, root, target, failed=True)  # type: ignore[attr-defined]
        raise LeakageError(f"{e}\nfull report: {where / layout.LEAKAGE_REPORT}") from None
    path = write(prep, root, target)
    return path, json.loads((path / layout.MANIFEST).read_text())


def format_table(manifest: dict) -> str:
    """A readable table of rows per split/set/source, the drops and the leakage summary."""
    lines = [f"{'split':<11}{'set':<18}{'source':<24}{'rows':>8}", "-" * 61]
    for split in ("train", "validation", "test"):
        for name, entry in manifest["sets"].get(split, {}).items():
            lines.append(f"{split:<11}{name:<18}{'(all)':<24}{entry['rows']:>8}")
            for src, n in entry.get("by_source", {}).items():
                if len(entry["by_source"]) > 1:
                    lines.append(f"{'':<11}{'':<18}{src:<24}{n:>8}")
    lines.append("")
    lines.append("dropped:")
    for reason, by_src in manifest["dropped"].items():
        for src, n in by_src.items():
            lines.append(f"  {reason}: {src}: {n}")
    lk = manifest["leakage"]
    lines.append("")
    lines.append(
        f"leakage guard: {'PASSED' if lk['passed'] else 'FAILED'} (threshold {lk['threshold']}, "
        f"word {lk['ngram']}-grams, {lk['offenders']} offender(s))"
    )
    for name, v in sorted(lk["max_containment"].items()):
        lines.append(f"  max containment {name:<18}{v:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prepare everything, print the counts table; exit 1 with the message on error."""
    ap = argparse.ArgumentParser(
        description="Prepare the training, validation and test sets from the raw data."
    )
    ap.add_argument(
        "--leakage-threshold",
        type=float,
        default=float(os.environ.get("MEDENC_LEAKAGE_THRESHOLD", leakage.DEFAULT_THRESHOLD)),
        help="max allowed fraction of a test text's word 8-grams found in training texts (default 0.5)",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default: $PREPARED_DIR or data/prepared)"
    )
    ap.add_argument(
        "--accept-upstream",
        action="store_true",
        help="use raw files that differ from their pinned sha256 (a newer upstream version, on purpose); "
        "the manifest records them under upstream_accepted",
    )
    args = ap.parse_args(argv)
    # Progress lines (medenc.core.progress) are INFO log records: without a handler they would not show.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        path, manifest = prepare(args.out, args.leakage_threshold, args.accept_upstream)
    except MedencError as e:
        return fail(e, code=1)
    print(format_table(manifest))
    for key, sha in manifest.get("upstream_accepted", {}).items():
        print(f"accepted, differs from its pin: {key} (sha256 {sha or 'missing'})")
    print(f"\nwrote {path}")
    return 0
