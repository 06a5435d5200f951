"""The held-out test sets: which exist, and how each becomes the texts to encode and the fields to score.

Sets come through a loader (``medenc.data`` by default, or a test double with the same three functions), so
the suite can be tested on small in-memory sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

import medenc.data
from medenc.core.errors import DataError
from medenc.core.eval_sets import EVAL_SETS, EvalSetSpec

# name -> EvalSetSpec (task, metrics, title, ...): the very dict of medenc/core/eval_sets.py, so an entry
# added there is scored here. Its order is the order of tables and charts.
SETS: dict[str, EvalSetSpec] = EVAL_SETS


class SetLoader(Protocol):
    """What the suite needs from the data layer (``medenc.data`` satisfies it)."""

    def load_split(self, split: str, name: str) -> Any: ...

    def load_retrieval(self, name: str) -> Any: ...

    def manifest_hash(self) -> str: ...


def default_loader() -> SetLoader:
    """The prepared data written by `make data`."""
    return cast(SetLoader, medenc.data)


@dataclass
class EvalSet:
    """One test set, reduced to what scoring needs: the texts to encode per role, and the task's fields."""

    name: str
    task: str
    n: int
    short_texts: list[str]
    passage_texts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def unique_texts(texts: Iterable[str]) -> list[str]:
    """Distinct texts in first-seen order (deterministic, so the cache key is stable)."""
    return list(dict.fromkeys(texts))


def select_sets(sets: Sequence[str] | None) -> list[str]:
    """The requested set names (default: all) in the order of ``SETS``; unknown names are refused."""
    names = list(sets) if sets else list(SETS)
    unknown = [s for s in names if s not in SETS]
    if unknown:
        raise DataError("--sets", None, f"names from {list(SETS)}", ", ".join(unknown))
    return [s for s in SETS if s in names]


def _columns(ds: Any, name: str, needed: Sequence[str]) -> dict[str, list]:
    """The needed columns of a non-empty test set, as lists."""
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise DataError(f"test/{name}", None, f"columns {list(needed)}", f"columns {ds.column_names}")
    if len(ds) == 0:
        raise DataError(f"test/{name}", None, "at least one row", "an empty set")
    return {c: list(ds[c]) for c in needed}


def _pair_set(loader: SetLoader, name: str, task: str) -> EvalSet:
    """STS (gold score) or pair classification (0/1 label): sentence pairs, all short texts."""
    target = "score" if task == "sts" else "label"
    cols = _columns(loader.load_split("test", name), name, ("sentence1", "sentence2", target))
    s1, s2 = [str(s) for s in cols["sentence1"]], [str(s) for s in cols["sentence2"]]
    y = np.asarray(cols[target], dtype=float if task == "sts" else int)
    return EvalSet(name, task, len(s1), unique_texts(s1 + s2), data={"s1": s1, "s2": s2, "y": y})


def _triplet_set(loader: SetLoader, name: str) -> EvalSet:
    """Anchor, positive, negative; the anchors are short texts."""
    cols = _columns(loader.load_split("test", name), name, ("anchor", "positive", "negative"))
    a, p, n = (list(map(str, cols[c])) for c in ("anchor", "positive", "negative"))
    # Positives and negatives are MedQuAD answers: passages, as in retrieval (TripletEvaluator encodes
    # them as documents), so they share the retrieval corpus's embeddings.
    return EvalSet(
        name, "triplets", len(a), unique_texts(a), unique_texts(p + n), data={"a": a, "p": p, "n": n}
    )


def _retrieval_set(loader: SetLoader, name: str) -> EvalSet:
    """Queries (short texts) against a corpus (passages), scored on the queries with a relevant document."""
    rs = loader.load_retrieval(name)
    # Like InformationRetrievalEvaluator: only queries with at least one relevant document are scored.
    qids = [q for q in rs.queries if rs.relevant.get(q)]
    if not qids:
        raise DataError(f"test/{name}_qrels", None, "at least one query with a relevant document", "none")
    unknown = {c for q in qids for c in rs.relevant[q]} - set(rs.corpus)
    if unknown:
        raise DataError(
            f"test/{name}_qrels", None, "corpus ids present in the corpus", f"unknown {sorted(unknown)[:5]}"
        )
    data = {
        "queries": {q: rs.queries[q] for q in qids},
        "corpus": dict(rs.corpus),
        "relevant": {q: set(rs.relevant[q]) for q in qids},
    }
    # Graded judgments (nfcorpus_dev's 3/2/1): nDCG takes its gains from them. A loader without grades (a
    # test double, a binary set) gives binary relevance, as the ST evaluator scores it.
    grades = getattr(rs, "grades", None) or {}
    if grades:
        data["grades"] = {q: {c: int(g) for c, g in grades.get(q, {}).items()} for q in qids}
    short = unique_texts(rs.queries[q] for q in qids)
    return EvalSet(name, "retrieval", len(qids), short, unique_texts(rs.corpus.values()), data=data)


def load_set(loader: SetLoader, name: str) -> EvalSet:
    """Build an EvalSet from the loader (``medenc.data`` or a test double with the same functions)."""
    if name not in SETS:
        raise DataError(f"test/{name}", None, f"one of {list(SETS)}", repr(name))
    task = SETS[name].task
    if task in ("sts", "pair_classification"):
        return _pair_set(loader, name, task)
    if task == "triplets":
        return _triplet_set(loader, name)
    return _retrieval_set(loader, name)
