"""RQE (AMIA 2016): does a consumer health question entail an FAQ? Train pairs and the 302-pair test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, clean_or_none, normalise, parse_xml
from medenc.data.source import Pin, Rows, Source, SourceInfo, TestYield, row

TRAIN, TEST = "RQE_Train_8588_AMIA2016.xml", "RQE_Test_302_pairs_AMIA2016.xml"
# Known defects of the upstream files, skipped explicitly (and counted) instead of failing the whole build.
# Any *other* empty text is a DataError. RQE train pair 5860 ships with an empty <faq>.
KNOWN_EMPTY: frozenset[tuple[str, str]] = frozenset({(TRAIN, "pair pid=5860")})


@dataclass(frozen=True)
class RqePair:
    """An RQE pair: does the consumer health question (chq) entail the FAQ? ``label`` is 1 for true."""

    pid: str
    chq: str
    faq: str
    label: int


def read_file(path: Path, skips: SkipLog | None = None) -> list[RqePair]:
    """Parse ``<pair pid value="true|false"><chq/><faq/></pair>`` elements."""
    root = parse_xml(path)
    out = []
    for i, p in enumerate(root.findall("pair"), start=1):
        where = f"pair pid={p.get('pid')}"
        value = p.get("value")
        if value not in ("true", "false"):
            raise DataError(path, f"{where} (#{i})", 'value="true" or value="false"', repr(value))
        chq, faq = clean_or_none(p.findtext("chq")), clean_or_none(p.findtext("faq"))
        if (chq is None or faq is None) and (path.name, where) in KNOWN_EMPTY:
            if skips is not None:
                skips.add(f"rqe: known empty text upstream ({path.name}, {where})")
            continue
        chq = normalise(chq, path, f"{where} (#{i}) <chq>")
        faq = normalise(faq, path, f"{where} (#{i}) <faq>")
        out.append(RqePair(str(p.get("pid")), chq, faq, int(value == "true")))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> dict[str, list[RqePair]]:
    """RQE train (8588 pairs) and test (302 pairs)."""
    return {"train": read_file(folder / TRAIN, skips), "test": read_file(folder / TEST, skips)}


def test_sets(rqe: dict[str, list[RqePair]]) -> TestYield:
    """The test pairs, for pair classification."""
    rows = [{"sentence1": p.chq, "sentence2": p.faq, "label": p.label} for p in rqe["test"]]
    return TestYield(sets={("test", "rqe"): rows})


def training_rows(rqe: dict[str, list[RqePair]], skips: SkipLog) -> Rows:
    """RQE train as graded pairs, pairs and triplets."""
    graded, pairs, triplets = [], [], []
    # chq key -> faq of the first true pair (pid order) whose text differs from the chq: a positive equal to
    # the anchor would make the triplet trivial.
    true_faq: dict[str, str] = {}
    for p in rqe["train"]:
        # Every labelled RQE pair is also a graded pair (entailed 1.0, not entailed 0.0): the only
        # in-domain labelled pairs, so a ranking loss (CoSENT) in phase 1 can learn the RQE boundary itself.
        graded.append(row(layout.GRADED_PAIRS, "rqe", leakage.key(p.chq), p.chq, p.faq, float(p.label)))
        if p.label:
            pairs.append(row(layout.PAIRS, "rqe", leakage.key(p.chq), p.chq, p.faq))
            if leakage.key(p.faq) != leakage.key(p.chq):
                true_faq.setdefault(leakage.key(p.chq), p.faq)
    for p in rqe["train"]:
        if not p.label:
            pos = true_faq.get(leakage.key(p.chq))
            if pos is None:
                skips.add("rqe: false pair without a distinct true faq for its chq (no triplet)")
                continue
            triplets.append(row(layout.TRIPLETS, "rqe", leakage.key(p.chq), p.chq, pos, p.faq))
    return {layout.GRADED_PAIRS: graded, layout.PAIRS: pairs, layout.TRIPLETS: triplets}


SOURCE = Source(
    info=SourceInfo(
        folder="rqe_amia2016",
        row_sources=("rqe",),
        name="RQE (AMIA 2016)",
        license="CC BY 4.0",
        role="train+validation: graded_pairs (1.0/0.0), pairs, triplets; test: rqe",
        url="https://github.com/abachaa/RQE_Data_AMIA2016",
        commit="9302fb9a55a437944ba6ce21a30023463a94a136",
        attribution="Ben Abacha and Demner-Fushman, 2016, Recognizing question entailment for medical "
        "question answering",
        bibtex="""@inproceedings{benabacha2016recognizing,
  title = {Recognizing Question Entailment for Medical Question Answering},
  author = {Ben Abacha, Asma and Demner-Fushman, Dina},
  booktitle = {AMIA Annual Symposium Proceedings},
  pages = {310--318},
  year = {2016}
}""",
    ),
    files=(TRAIN, TEST),
    # @ 9302fb9a55a4
    pins={
        TEST: Pin("0d7d97c8858971edfafad578d39e739129dad33a94cb690277f79f1b1d1b4e80", 1213),
        TRAIN: Pin("4729784635c1e9a07d06c91a5efb50bad298758c51705dbf6c7dabcd87adc854", 68707),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
)
