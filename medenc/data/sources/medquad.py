"""MedQuAD: consumer health questions and answers from NIH websites, in 12 subset folders of XML documents.

Answered documents (subsets 1-9) are held out for the retrieval and triplet tests by hash of their topic;
the held-out documents' synonyms join the terms test, and the other documents give the training pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.core.progress import progress
from medenc.data import leakage
from medenc.data.parsing import SkipLog, clean_or_none, normalise, parse_xml
from medenc.data.source import Pin, Rows, Sets, Source, SourceInfo, TestYield, bucket, row

# Fraction of MedQuAD answered documents (subsets 1-9) held out for the retrieval test, by hash of the
# document's topic (see _topic). 0.05 gives ~500 answers after removing templated ones: a corpus that
# evaluation can embed quickly on a CPU.
MEDQUAD_TEST_FRACTION = 0.05
TEST_TRIPLETS_CAP = 500


@dataclass(frozen=True)
class MedquadQA:
    """One MedQuAD QAPair; ``answer`` is None where upstream removed or never had the answer."""

    qid: str
    question: str
    answer: str | None


@dataclass(frozen=True)
class MedquadDoc:
    """One MedQuAD XML document. ``doc_id`` is ``<subset folder>/<file stem>`` (upstream ids repeat across
    folders, so the folder is part of the stable id)."""

    doc_id: str
    subset: int
    focus: str | None
    synonyms: tuple[str, ...]
    qa: tuple[MedquadQA, ...]
    variant_schema: bool = False  # four NINDS files use <doc>/<qaPairs>/<pair> instead of <Document>/...


@dataclass(frozen=True)
class Medquad:
    """Every document, and the ids of those held out for the test (by hash of their topic)."""

    docs: list[MedquadDoc]
    held: frozenset[str] = field(default_factory=frozenset)


def read_file(path: Path, subset: int) -> MedquadDoc:
    """Parse one MedQuAD XML document (both the common and the four-file NINDS variant schema).

    An empty <Answer> is not an error: subsets 10-12 had their answers removed for copyright and five GARD
    documents ship an empty one; such a QAPair is simply not a (question, answer) pair. An empty <Focus>
    (three CDC documents) means no synonym pairs.
    """
    root = parse_xml(path)
    doc_id = f"{path.parent.name}/{path.stem}"
    if root.tag in ("Document", "DiseaseFile"):  # one CDC file uses <DiseaseFile>, otherwise identical
        variant, focus_tag, pair_path, q_tag, a_tag = False, "Focus", "QAPairs/QAPair", "Question", "Answer"
    elif root.tag == "doc":
        variant, focus_tag, pair_path, q_tag, a_tag = (
            True,
            "doctitle-focus",
            "qaPairs/pair",
            "question",
            "answer",
        )
    else:
        raise DataError(
            path, f"root element <{root.tag}>", "a <Document> (or <doc>, <DiseaseFile>) root element"
        )
    focus = clean_or_none(root.findtext(focus_tag))
    synonyms = [
        normalise(s.text, path, f"<Synonym> #{i}") for i, s in enumerate(root.iter("Synonym"), start=1)
    ]
    qa = []
    for i, p in enumerate(root.findall(pair_path), start=1):
        q = p.find(q_tag)
        where = f"<{p.tag} pid={p.get('pid')!r}> (#{i})"
        if q is None:
            raise DataError(path, where, f"a <{q_tag}> element")
        qid = q.get("qid") or f"{doc_id}-{i}"
        qa.append(
            MedquadQA(qid, normalise(q.text, path, f"{where} <{q_tag}>"), clean_or_none(p.findtext(a_tag)))
        )
    return MedquadDoc(doc_id, subset, focus, tuple(synonyms), tuple(qa), variant)


def read_docs(folder: Path) -> list[MedquadDoc]:
    """All MedQuAD documents of the 12 subset folders, in a stable (folder number, file name) order."""
    subsets = []
    for d in folder.iterdir():
        m = re.match(r"(\d+)_", d.name)
        if d.is_dir() and m:
            subsets.append((int(m.group(1)), d))
    found = sorted(n for n, _ in subsets)
    if found != list(range(1, 13)):
        raise DataError(
            folder, None, "12 subset folders 1_CancerGov_QA ... 12_MPlusHerbsSupplements_QA", str(found)
        )
    files = [(n, f) for n, d in sorted(subsets) for f in sorted(d.glob("*.xml"))]
    return [read_file(f, n) for n, f in progress(files, desc="reading MedQuAD", unit="files")]


def _topic(doc: MedquadDoc) -> str:
    """The held-out unit of a MedQuAD document: its normalised focus, else its id (empty focus)."""
    return leakage.key(doc.focus) if doc.focus else doc.doc_id


def held_out(docs: list[MedquadDoc]) -> frozenset[str]:
    """The ids of the answered documents (subsets 1-9) held out for the test, by hash of their topic."""
    return frozenset(
        d.doc_id
        for d in docs
        if d.subset <= 9
        and any(q.answer for q in d.qa)
        and bucket(f"medquad-test:{_topic(d)}") < MEDQUAD_TEST_FRACTION
    )


def read(folder: Path, skips: SkipLog | None = None) -> Medquad:
    """Every document, and which are held out for the test."""
    docs = read_docs(folder)
    return Medquad(docs, held_out(docs))


def build_test(mq: Medquad, exclude: frozenset[str] = frozenset()) -> Sets:
    """The retrieval and triplet test sets of the held-out documents.

    QAPairs whose question or answer key is in ``exclude`` (templated text also found in training) are left
    out of the test sets; their documents stay held out of training.
    """
    corpus: dict[str, str] = {}  # answer key -> corpus id
    corpus_rows, query_rows = [], []
    query_index: dict[str, str] = {}  # question key -> query id (identical questions share a query)
    qrels: set[tuple[str, str]] = set()
    triplets = []
    for d in (d for d in mq.docs if d.doc_id in mq.held):
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
    return {
        ("test", "medquad_queries"): query_rows,
        ("test", "medquad_corpus"): corpus_rows,
        ("test", "medquad_qrels"): [{"query_id": q, "corpus_id": c} for q, c in sorted(qrels)],
        ("test", "triplets"): [
            {"anchor": a, "positive": p, "negative": n} for _, a, p, n in triplets[:TEST_TRIPLETS_CAP]
        ],
    }


def test_sets(mq: Medquad) -> TestYield:
    """Retrieval and triplets of the held-out documents; their synonyms (-> focus) join the terms test."""
    terms = [
        (f"synonym:{d.doc_id}#{n}", s, d.focus)
        for d in mq.docs
        if d.doc_id in mq.held and d.focus
        for n, s in enumerate(d.synonyms, start=1)
    ]
    return TestYield(sets=build_test(mq), terms=terms)


def training_rows(mq: Medquad, skips: SkipLog) -> Rows:
    """Question->answer and synonym->focus pairs of the documents not held out for the test."""
    rows = []
    for d in mq.docs:
        if d.doc_id in mq.held:
            continue
        for q in d.qa:
            if q.answer:
                rows.append(row(layout.PAIRS, "medquad_qa", d.doc_id, q.question, q.answer))
        if d.focus:
            for s in d.synonyms:
                rows.append(row(layout.PAIRS, "medquad_synonym", d.doc_id, s, d.focus))
        elif d.synonyms:
            skips.add("medquad: synonyms of a document with an empty <Focus>", len(d.synonyms))
    return {layout.PAIRS: rows}


def manifest_info(mq: Medquad) -> dict[str, object]:
    """The manifest's MedQuAD counts and test fraction."""
    return {
        "medquad_documents": len(mq.docs),
        "medquad_variant_schema_documents": sum(d.variant_schema for d in mq.docs),
        "medquad_qapairs": sum(len(d.qa) for d in mq.docs),
        "medquad_qapairs_with_answer": sum(1 for d in mq.docs for q in d.qa if q.answer),
        "medquad_test_documents": len(mq.held),
        "medquad_test_fraction": MEDQUAD_TEST_FRACTION,
    }


_SUBSETS = {
    "1_CancerGov_QA": ("7cc9ae0fff463b1d7a6ae2b3e88de0359cec1ebcc228562bb53352075945a0eb", 116),
    "2_GARD_QA": ("d9dc4e8530bae019f1afc276c4334df6a5220bbc008071aa58345cdb297fb652", 2685),
    "3_GHR_QA": ("d0ae0fe6804d5f20c9f642044bb11a9668d42a3e5f60412a77c973c8c4c18e95", 1086),
    "4_MPlus_Health_Topics_QA": ("1e1f222b338934061f649944cb96dde53ccb3089cb3cc5b3a1cdf6293761861d", 981),
    "5_NIDDK_QA": ("edcf3769a9ebb7030cfd03e5a3365690eb76ccd1937959a4f5fe1a38d6f4b137", 157),
    "6_NINDS_QA": ("92c986be8aec6ce19d43031dc2827d6445bb88e884b46a4397677ac46d21e061", 277),
    "7_SeniorHealth_QA": ("b9ed2e341ea073323ef6adf5672f51232b34d4d928610424fdd224bc2cf1e0ae", 48),
    "8_NHLBI_QA_XML": ("ea0526a35e39f50fd6d8c6158b4b3d2f59115e325fbeb4aa94e7a34374029d8a", 88),
    "9_CDC_QA": ("c6f3c75f881779704f5af7f1dba7d73f5e9ab6bffa0f9c5ac0b060426622ed8d", 59),
    "10_MPlus_ADAM_QA": ("d47d47a52b8817570ef5f8c05268cc10573f78a09ad40eaf7af17c0ea392536d", 4366),
    "11_MPlusDrugs_QA": ("b931177807ab1206dd1ecf00ae0b03c24ea4b5ff429930bd05c24536d9a0388e", 1312),
    "12_MPlusHerbsSupplements_QA": ("dec011adb4779aaeeba20e8e85dd354668d8a29520d73e88154f2e6e302565e2", 99),
}

SOURCE = Source(
    info=SourceInfo(
        folder="medquad",
        row_sources=("medquad_qa", "medquad_synonym"),
        name="MedQuAD",
        license="CC BY 4.0",
        role="train+validation: pairs (question->answer, synonym->focus); test: retrieval, triplets, "
        "terms (synonyms of held-out documents)",
        url="https://github.com/abachaa/MedQuAD",
        commit="577bd37b96c02d1833b2c9eed2de9f96964e96cb",
        attribution="Ben Abacha and Demner-Fushman, 2019, "
        "A question-entailment approach to question answering",
        bibtex="""@article{benabacha2019question,
  title = {A Question-Entailment Approach to Question Answering},
  author = {Ben Abacha, Asma and Demner-Fushman, Dina},
  journal = {BMC Bioinformatics},
  volume = {20},
  number = {1},
  pages = {511},
  year = {2019}
}""",
    ),
    files=("1_CancerGov_QA/ ... 12_MPlusHerbsSupplements_QA/ (XML documents)",),
    # @ 577bd37b96c0: one digest per subset folder (11,274 documents), see medenc.data.pins.folder_digest
    pins={sub: Pin(sha, n, "files") for sub, (sha, n) in _SUBSETS.items()},
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    retest=build_test,
    manifest_info=manifest_info,
    glob="*_*/*.xml",
    folder_pinned=True,
)
