"""Tokenize once (``phaseN.pretokenize``): each training and validation set is tokenized a single time, the
collator only pads.

sentence-transformers' collator tokenizes every batch in the training process, which bounds a GPU step by the
host (results/bench/h100/README.md). Here the rows go through the model's own ``preprocess`` once (its
truncation and ``max_seq_length``, no padding) with ``datasets.map``, cached on disk under
``<medenc cache>/tokenized/`` by the rows' content, the tokenizer's files, ``max_seq_length`` and the library
versions. :class:`PaddingCollator` then pads each batch with the tokenizer's own ``pad`` and hands the loss
the very features the per-batch path builds (``<column>_input_ids``, ``<column>_attention_mask``,
``<column>_modality``; ``tests/test_tokenize.py`` checks they are equal). The token columns sit beside the
text columns; the batch samplers see the text columns only (:func:`text_view_sampler`): the same batches.

The bench's reference loop (:mod:`medenc.bench.reference`) tokenizes and pads with the same two functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers.base.data_collator import DEFAULT_LABEL_COLUMNS
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from medenc.core.paths import cache_dir

FORMAT = 1  # bump when what is cached changes shape
MAP_BATCH = 1000
# Saved keys that are not how the tokenizer tokenizes: where tokenizer_config.json was loaded from, and in
# tokenizer.json the padding and truncation of the last call (every call sets them from its own arguments;
# the sides stay in tokenizer_config.json).
_VOLATILE = {
    "tokenizer_config.json": ("is_local", "local_files_only", "name_or_path", "_commit_hash"),
    "tokenizer.json": ("padding", "truncation"),
}


# --- Tokenizing and padding (shared with the bench's reference loop) -----------------------------------


def tokenize_texts(model: Any, texts: list[str], max_length: int | None = None) -> dict[str, Any]:
    """``texts`` through the model's own ``preprocess`` (its truncation, at its max length unless
    ``max_length``), unpadded, as lists.

    Per-row values are lists (``input_ids``, ``attention_mask``); batch-wide ones (``modality``) are scalars.
    """
    text: dict[str, Any] = {"padding": False} | ({"max_length": max_length} if max_length else {})
    kwargs = {"text": text, "common": {"return_tensors": None}}
    return dict(model.preprocess(list(texts), processing_kwargs=kwargs))


@dataclass(frozen=True)
class Layout:
    """What ``preprocess`` returns for this model: the per-row token keys and the batch-wide values."""

    token_keys: tuple[str, ...]
    constants: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Any) -> Layout:
        """Probed on one text: a key whose value is a list per row is a token key, the rest are constants."""
        out = tokenize_texts(model, ["probe"])
        keys = tuple(k for k, v in out.items() if isinstance(v, list))
        return cls(keys, {k: v for k, v in out.items() if k not in keys})


def pad_features(
    tokenizer: Any,
    rows: dict[str, list[list[int]]],
    layout: Layout,
    *,
    pad_to_multiple_of: int | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Token lists padded to tensors by the tokenizer's ``pad``: to the longest row (rounded up to
    ``pad_to_multiple_of``), or to ``max_length`` when given; plus the batch-wide values, as in
    ``preprocess``."""
    padding: bool | str = "max_length" if max_length else True
    padded = tokenizer.pad(
        rows, padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
        return_tensors="pt",
    )  # fmt: skip
    return {**dict(padded), **layout.constants}


# --- Datasets: which columns are text, the cache key, the cached map ------------------------------------


def text_columns(ds: Any) -> list[str]:
    """The columns sentence-transformers tokenizes: all but the label columns and ``dataset_name``."""
    return [c for c in ds.column_names if c not in DEFAULT_LABEL_COLUMNS and c != "dataset_name"]


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of the tokenizer's saved files (where it was loaded from left out)."""
    h = hashlib.sha256()
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(Path(p) for p in tokenizer.save_pretrained(tmp)):
            data = path.read_bytes()
            if path.name in _VOLATILE:
                kept = {k: v for k, v in json.loads(data).items() if k not in _VOLATILE[path.name]}
                data = json.dumps(kept, sort_keys=True).encode("utf-8")
            h.update(f"{path.name}\0{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


def cache_key(model: Any, ds: Any) -> str:
    """sha256 of what the tokenized set depends on: its rows (every column), the tokenizer, the max length,
    the input module's processing settings and the library versions."""
    import sentence_transformers
    import tokenizers
    import transformers

    h = hashlib.sha256()
    setup = {
        "format": FORMAT,
        "columns": ds.column_names,
        "max_seq_length": model.max_seq_length,
        "processing_kwargs": repr(getattr(model[0], "processing_kwargs", None)),
        "tokenizer": tokenizer_sha256(model.tokenizer),
        "versions": [sentence_transformers.__version__, transformers.__version__, tokenizers.__version__],
    }
    h.update(json.dumps(setup, sort_keys=True).encode("utf-8"))
    for col in ds.column_names:
        h.update(json.dumps(list(ds[col])).encode("utf-8"))  # quotes and escapes keep the rows apart
    return h.hexdigest()


def _tokenize_map(model: Any, ds: Any, key: str) -> Any:
    """``ds`` with ``<column>_<token key>`` list columns added (the text columns stay), in memory."""
    columns = text_columns(ds)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {}
        for col in columns:
            for k, v in tokenize_texts(model, batch[col]).items():
                if isinstance(v, list):
                    out[f"{col}_{k}"] = v
        return out

    # new_fingerprint: datasets would otherwise hash the closure (the whole model); keep_in_memory: never
    # write a cache file beside the prepared data (it may be read-only).
    return ds.map(
        tokenize, batched=True, batch_size=MAP_BATCH, keep_in_memory=True, new_fingerprint=key[:32],
        desc="Tokenizing once",
    )  # fmt: skip


def tokenized(model: Any, ds: Any, name: str, root: Path | None = None) -> tuple[Any, bool]:
    """``ds`` tokenized once: loaded from the cache when it holds this key, else tokenized and stored
    atomically (a temporary folder renamed into place). Returns (dataset, whether the cache held it).

    ``name`` (e.g. ``phase2-train``) only makes the folder readable; the key decides a hit.
    """
    from datasets import load_from_disk

    key = cache_key(model, ds)
    root = root or cache_dir() / "tokenized"
    final = root / f"{name}-{key[:24]}"
    if final.is_dir():
        return load_from_disk(str(final)), True
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        _tokenize_map(model, ds, key).save_to_disk(str(tmp / "data"))
        try:
            os.replace(tmp / "data", final)
        except OSError:  # another process (a second rank) stored the same key first: use its copy
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(final)), False


# --- The Trainer's side: a collator that only pads, samplers that see the texts --------------------------


@dataclass
class PaddingCollator(SentenceTransformerDataCollator):
    """sentence-transformers' collator for tokenized rows: pads each text column's token lists (with
    ``pad_to_multiple_of``, up to that multiple) into the batch keys its own collator builds."""

    tokenizer: Any = None
    layout: Layout | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        import torch

        assert self.layout is not None
        first, batch = features[0], {}
        if "dataset_name" in first:
            batch["dataset_name"] = first["dataset_name"]
        for label in self.valid_label_columns:  # the first label column, as sentence-transformers does
            if label in first:
                batch["label"] = torch.tensor([row[label] for row in features])
                break
        probe = self.layout.token_keys[0]
        for col in (c for c in first if f"{c}_{probe}" in first):  # the dataset's column order
            rows = {k: [row[f"{col}_{k}"] for row in features] for k in self.layout.token_keys}
            padded = pad_features(
                self.tokenizer, rows, self.layout, pad_to_multiple_of=self.pad_to_multiple_of
            )
            batch.update({f"{col}_{k}": v for k, v in padded.items()})
        return batch


def padding_collator(model: Any, pad_to_multiple_of: int | None) -> PaddingCollator:
    """The collator of a phase with ``pretokenize``."""
    return PaddingCollator(
        preprocess_fn=model.preprocess,
        tokenizer=model.tokenizer,
        layout=Layout.of(model),
        pad_to_multiple_of=pad_to_multiple_of,
    )


def text_view(ds: Any) -> Any:
    """``ds`` without its token columns (list columns): what a batch sampler of the text rows reads."""
    from datasets import LargeList, List

    keep = [c for c, f in ds.features.items() if not isinstance(f, (List, LargeList))]
    return ds if len(keep) == len(ds.column_names) else ds.select_columns(keep)


@dataclass(frozen=True)
class TextViewSampler:
    """A batch sampler factory that builds ``sampler`` on :func:`text_view` (a class, so the training
    arguments that hold it can be saved with the checkpoint)."""

    sampler: Any

    def __call__(self, dataset: Any, **kwargs: Any) -> Any:
        return self.sampler(text_view(dataset), **kwargs)


def text_view_sampler(sampler: Any) -> Any:
    """A ``batch_sampler`` argument that builds ``sampler`` on :func:`text_view`, so that no-duplicates and
    length grouping judge the texts, as without ``pretokenize``; the plain random one reads no column."""
    if sampler == "batch_sampler":
        return sampler
    if sampler == "no_duplicates":
        from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

        sampler = NoDuplicatesBatchSampler
    return TextViewSampler(sampler)
