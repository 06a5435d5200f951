"""PubMedQA (PQA-L): biomedical research questions and their abstracts (test only: the 500 test PMIDs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, read_json
from medenc.data.source import Pin, Source, SourceInfo, TestYield


@dataclass(frozen=True)
class PubmedqaItem:
    """A PubMedQA PQA-L instance: the question and its abstract (contexts joined by spaces)."""

    pmid: str
    question: str
    abstract: str


@dataclass(frozen=True)
class Pubmedqa:
    """PQA-L instances keyed by PMID, and the 500 official test PMIDs (in file order)."""

    items: dict[str, PubmedqaItem]
    test_ids: list[str]


def _items(path: Path) -> dict[str, PubmedqaItem]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, "a JSON object keyed by PMID", type(data).__name__)
    items = {}
    for pmid, v in data.items():
        where = f"PMID {pmid}"
        if not isinstance(v, dict) or not isinstance(v.get("CONTEXTS"), list) or not v["CONTEXTS"]:
            raise DataError(path, where, "an object with QUESTION and a non-empty CONTEXTS list")
        question = normalise(v.get("QUESTION"), path, f"{where}, QUESTION")
        ctx = [normalise(c, path, f"{where}, CONTEXTS[{i}]") for i, c in enumerate(v["CONTEXTS"])]
        items[str(pmid)] = PubmedqaItem(str(pmid), question, " ".join(ctx))
    return items


def read(folder: Path, skips: SkipLog | None = None) -> Pubmedqa:
    """PQA-L instances keyed by PMID, and the 500 official test PMIDs (in file order)."""
    path = folder / "ori_pqal.json"
    items = _items(path)
    tpath = folder / "test_ground_truth.json"
    truth = read_json(tpath)
    if not isinstance(truth, dict):
        raise DataError(tpath, None, "a JSON object PMID -> label", type(truth).__name__)
    test_ids = [str(k) for k in truth]
    missing = [k for k in test_ids if k not in items]
    if missing:
        raise DataError(
            tpath, f"PMID {missing[0]}", f"a PMID present in {path.name}", f"{len(missing)} missing"
        )
    return Pubmedqa(items, test_ids)


def test_sets(pm: Pubmedqa) -> TestYield:
    """Retrieval: each test question -> its own abstract."""
    ids = pm.test_ids
    return TestYield(
        sets={
            ("test", "pubmedqa_queries"): [{"id": i, "text": pm.items[i].question} for i in ids],
            ("test", "pubmedqa_corpus"): [{"id": i, "text": pm.items[i].abstract} for i in ids],
            ("test", "pubmedqa_qrels"): [{"query_id": i, "corpus_id": i} for i in ids],
        }
    )


SOURCE = Source(
    info=SourceInfo(
        folder="pubmedqa",
        name="PubMedQA (PQA-L)",
        license="MIT",
        role="test only: pubmedqa retrieval (500 official test PMIDs)",
        url="https://github.com/pubmedqa/pubmedqa",
        commit="1cbae8e92f72f20c8d3747cbb3bf5bc53554d997",
        attribution="Jin et al., 2019, PubMedQA: A dataset for biomedical research question answering",
        hub_dataset="qiaojin/PubMedQA",
        bibtex="""@inproceedings{jin2019pubmedqa,
  title = {{PubMedQA}: A Dataset for Biomedical Research Question Answering},
  author = {Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle = {Proceedings of EMNLP-IJCNLP 2019},
  pages = {2567--2577},
  year = {2019}
}""",
    ),
    files=("ori_pqal.json", "test_ground_truth.json"),
    # @ 1cbae8e92f72
    pins={
        "ori_pqal.json": Pin("8b3276be8942ebbd77f3ddcda12c1749bf0e490045a736fd8438ee40cf37a41d", 35173),
        "test_ground_truth.json": Pin(
            "939fe566f09017d13b1ca64d2ddfee0bc2374b366048152997669cccedc44d51", 502
        ),
    },
    read=read,
    test_sets=test_sets,
)
