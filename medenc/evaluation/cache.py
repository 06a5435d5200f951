"""Encode each text once per model, on disk, and serve the embeddings to the ST evaluators.

Encoding is the whole cost of evaluation on a CPU (~600 tokens/s for MPNet-base in fp32), so embeddings are
cached per text under ``cache_dir()/embeddings/<key>/``, where the key is (the model's id, max_seq_length, the
backend's tag: ``medenc.evaluation.backends``); the id is ``medenc.core.model_id.model_hash``, which covers
every file that changes what the model computes (weights, pooling, modules, tokenizer, configs), so an edited
pooling config misses. Each encoding
adds one shard (text hashes + vectors), so the base model is encoded once for every run, a rerun re-encodes
nothing, and a changed or added test text costs only itself.
Shards are published atomically (write then rename), so a crash never leaves a half file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medenc.core.paths import cache_dir
from medenc.core.progress import encode_in_chunks

log = logging.getLogger(__name__)

CACHE_FORMAT = 3  # bump when the key or the stored array changes meaning


def text_sha256(text: str) -> str:
    """The cache's id of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(model_id: str, max_seq_length: int, precision: str) -> str:
    """The folder name of one model's embeddings at one length cap and backend (``model_id``: ``model_hash``
    of its folder; ``precision``: the backend's ``cache_tag``, ``fp32`` and ``bf16`` for PyTorch)."""
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "model": model_id,
            "max_seq_length": max_seq_length,
            "precision": precision,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ModelRef:
    """A model to score: its name, folder, weights sha256, model id (``model_hash``, the cache's key), and a
    loader called only on a cache miss."""

    name: str
    path: Path
    sha256: str
    load: Callable[[], object]
    model_hash: str
    _model: object | None = field(default=None, repr=False)
    encode_calls: int = 0  # texts lists actually sent to the model (tests count cache hits with it)

    def model(self):
        """The loaded model, loading it on first use."""
        if self._model is None:
            self._model = self.load()
        return self._model

    def release(self) -> None:
        """Drop the loaded model so only one is in memory at a time."""
        self._model = None


def encode_texts(
    encoder, texts: Sequence[str], max_seq_length: int, batch_size: int = 32, desc: str = "encoding"
) -> np.ndarray:
    """Encode with length-sorted batches (less padding) in the input order, reporting progress as it goes.

    ``encoder``: one of ``medenc.evaluation.backends``' encoders (or a SentenceTransformer), which runs in
    its backend's precision.
    """
    encoder.max_seq_length = max_seq_length
    # Longest first (encode_in_chunks): the first batch shows the peak memory, and padding stays small; in
    # tokens where the encoder counts them (every backend does), since a batch pads to its most tokens.
    count = getattr(encoder, "token_lengths", None)
    lengths = count(texts) if count is not None else None
    emb = encode_in_chunks(encoder.encode, texts, batch_size=batch_size, desc=desc, lengths=lengths)
    return emb.astype(np.float32)


class EmbeddingCache:
    """Per-text embeddings on disk; ``enabled=False`` (--no-cache) neither reads nor writes.

    ``hits`` and ``misses`` count ``get`` calls answered entirely from disk, or needing any encoding.
    """

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def folder_for(self, key: str) -> Path:
        """The folder of one cache key (two-character fan-out keeps directories small)."""
        return self.root / key[:2] / key

    def _load(self, folder: Path) -> dict[str, np.ndarray]:
        """Text hash -> embedding from every readable shard of ``folder``."""
        table: dict[str, np.ndarray] = {}
        for shard in sorted(folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as z:
                    table.update(zip(z["hashes"].tolist(), z["emb"], strict=True))
            except (OSError, ValueError, KeyError):
                log.warning("Unreadable embedding cache shard %s; its texts are encoded again", shard)
        return table

    def _save(self, folder: Path, hashes: list[str], emb: np.ndarray) -> None:
        """Publish one new shard atomically (write to a temporary file, then rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, hashes=np.asarray(hashes), emb=emb)
            os.replace(tmp, folder / f"shard-{text_sha256(''.join(hashes))[:16]}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(
        self, ref: ModelRef, texts: Sequence[str], max_seq_length: int, precision: str
    ) -> tuple[np.ndarray, dict]:
        """The embeddings of ``texts`` (in order) and a record {key, cached, encoded, seconds}."""
        key = cache_key(ref.model_hash, max_seq_length, precision)
        folder = self.folder_for(key)
        table = self._load(folder) if self.enabled else {}
        hashes = [text_sha256(t) for t in texts]
        todo = dict(zip(hashes, texts, strict=True))
        for h in table:
            todo.pop(h, None)
        seconds = 0.0
        if todo:
            t0 = time.perf_counter()
            ref.encode_calls += 1
            desc = f"{ref.name}: encoding at {max_seq_length} tokens"
            arr = encode_texts(ref.model(), list(todo.values()), max_seq_length, desc=desc)
            seconds = time.perf_counter() - t0
            table.update(zip(todo, arr, strict=True))
            if self.enabled:
                self._save(folder, list(todo), arr)
            self.misses += 1
        else:
            self.hits += 1
        out = np.stack([table[h] for h in hashes]) if hashes else np.zeros((0, 0), dtype=np.float32)
        return out, {"key": key, "cached": not todo, "encoded": len(todo), "seconds": round(seconds, 3)}


class _NoModelCard:
    """The evaluators record metrics in the model card; a cached encoder has none, so this ignores them."""

    def set_evaluation_metrics(self, *args, **kwargs) -> None:
        """Ignore the figures (there is no card to write them to)."""
        return None


class CachedEncoder:
    """Looks like a SentenceTransformer to the ST evaluators, but answers ``encode`` from cached embeddings.

    The evaluators and the bootstrap thereby read the very same vectors. Queries/short texts and passages are
    separate tables because they are encoded with different max_seq_length.
    """

    similarity_fn_name = "cosine"

    def __init__(self, short: dict[str, np.ndarray], passage: dict[str, np.ndarray] | None = None):
        self._short = short
        self._passage = passage if passage is not None else short
        self.model_card_data = _NoModelCard()

    @staticmethod
    def similarity(a, b):
        """Cosine similarity, as SentenceTransformer.similarity with similarity_fn_name='cosine'."""
        from sentence_transformers.util import cos_sim

        return cos_sim(a, b)

    @staticmethod
    def _lookup(table: dict[str, np.ndarray], sentences, convert_to_tensor: bool, normalize: bool):
        """The cached embeddings of ``sentences``, shaped and typed as ``SentenceTransformer.encode``."""
        single = isinstance(sentences, str)
        items = [sentences] if single else list(sentences)
        missing = [s for s in items if s not in table]
        if missing:
            raise KeyError(f"CachedEncoder: {len(missing)} text(s) were not pre-encoded, e.g. {missing[0]!r}")
        arr = np.stack([table[s] for s in items]) if items else np.zeros((0, 0), dtype=np.float32)
        if normalize:
            arr = arr / np.linalg.norm(arr, axis=1, keepdims=True)
        if single:
            arr = arr[0]
        if convert_to_tensor:
            import torch

            return torch.from_numpy(np.ascontiguousarray(arr))
        return arr

    def encode(self, sentences, convert_to_tensor: bool = False, normalize_embeddings: bool = False, **_):
        """Short texts (sentences, queries, anchors)."""
        return self._lookup(self._short, sentences, convert_to_tensor, normalize_embeddings)

    def encode_query(
        self, sentences, convert_to_tensor: bool = False, normalize_embeddings: bool = False, **_
    ):
        """Queries: short texts."""
        return self._lookup(self._short, sentences, convert_to_tensor, normalize_embeddings)

    def encode_document(
        self, sentences, convert_to_tensor: bool = False, normalize_embeddings: bool = False, **_
    ):
        """Documents: passages, encoded with the passage length cap."""
        return self._lookup(self._passage, sentences, convert_to_tensor, normalize_embeddings)
