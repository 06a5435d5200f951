"""The data layer: prepared training, validation and test sets, and how to load them.

``make data`` (``python scripts/prepare_data.py``) runs :mod:`medenc.data.prepare`: it checks the raw files
against their pinned sha256 (:mod:`medenc.data.pins`), parses the raw sources (one module per source in
:mod:`medenc.data.sources`, listed in its ``REGISTRY``), builds every set (the steps ``read``, ``test_sets``,
``candidates``, ``filters``, ``write``) and checks it for test leakage (:mod:`medenc.data.leakage`). Training
and evaluation read the result only through the functions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.core.paths import prepared_dir
from medenc.data import checksums

if TYPE_CHECKING:
    from datasets import Dataset

SPLITS = ("train", "validation", "test")
_RUN = "run `make data` (python scripts/prepare_data.py) to prepare it"


@dataclass
class RetrievalSet:
    """A retrieval test set: query id -> text, corpus id -> text, query id -> relevant corpus ids; for a set
    with graded judgments (its qrels have ``relevance``), query id -> corpus id -> grade (else empty)."""

    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    relevant: dict[str, set[str]] = field(default_factory=dict)
    grades: dict[str, dict[str, int]] = field(default_factory=dict)


def load_split(split: str, name: str) -> Dataset:
    """Load the prepared set ``<prepared>/<split>/<name>``, e.g. ``("train", "pairs")``."""
    from datasets import load_from_disk

    if split not in SPLITS:
        raise DataError(prepared_dir(), f"split {split!r}", f"one of {', '.join(SPLITS)}")
    path = prepared_dir() / split / name
    if not (path / "dataset_info.json").is_file():
        raise DataError(path, None, f"a prepared dataset; {_RUN}", "no such dataset")
    checksums.verify(prepared_dir())  # every prepared file as `make data` wrote it, before any is read
    try:
        return load_from_disk(str(path))
    except Exception as e:  # a half-copied or foreign folder: say so instead of a datasets traceback
        raise DataError(path, None, f"a readable datasets folder; {_RUN}", f"{type(e).__name__}: {e}") from e


def load_retrieval(name: str) -> RetrievalSet:
    """The retrieval test set ``name`` (``medquad``, ``pubmedqa``, ...) as a :class:`RetrievalSet`."""
    if name not in layout.TEST_RETRIEVAL:
        raise DataError(prepared_dir() / "test", f"retrieval set {name!r}", f"one of {layout.TEST_RETRIEVAL}")
    out = RetrievalSet()
    for r in load_split("test", f"{name}_queries"):
        out.queries[r["id"]] = r["text"]
    for r in load_split("test", f"{name}_corpus"):
        out.corpus[r["id"]] = r["text"]
    qrels_path = prepared_dir() / "test" / f"{name}_qrels"
    for i, r in enumerate(load_split("test", f"{name}_qrels")):
        if r["query_id"] not in out.queries or r["corpus_id"] not in out.corpus:
            raise DataError(
                qrels_path, f"row {i}", "query_id and corpus_id present in the queries and corpus"
            )
        out.relevant.setdefault(r["query_id"], set()).add(r["corpus_id"])
        if "relevance" in r:  # graded qrels (nfcorpus_dev): the grade is the nDCG gain's level
            out.grades.setdefault(r["query_id"], {})[r["corpus_id"]] = int(r["relevance"])
    return out


def manifest_path() -> str:
    """The path of the manifest file (as a string, for messages)."""
    return str(prepared_dir() / layout.MANIFEST)


def load_manifest() -> dict:
    """The manifest written by ``make data`` (counts, raw file hashes, sources, leakage summary)."""
    return checksums.read_manifest(prepared_dir())


def manifest_hash() -> str:
    """sha256 of the manifest file's bytes: identifies the prepared data a run was trained/evaluated on.

    Only after checking every prepared file against ``checksums.json`` (:func:`medenc.data.checksums.verify`),
    which ties their contents to this manifest: a changed, cut or foreign file is refused, not hashed over.
    """
    return checksums.verify(prepared_dir())
