"""What identifies a model: the hash of every file of its folder that changes what it computes.

A sentence-transformers folder computes its embeddings from far more than ``model.safetensors``:
modules.json (which modules, in which order), ``1_Pooling/config.json`` (mean, CLS or max pooling),
sentence_bert_config.json (``max_seq_length``), config.json, the tokenizer files,
``config_sentence_transformers.json`` (prompts, the similarity function) and any further module folder
(Dense, Normalize). ``model_hash`` covers them all: the sha256 of the sorted list of (relative path, sha256
of the file), so a changed pooling mode or a swapped tokenizer gives another model id, for the embedding
cache, run.json and the release alike.

Left out, because they never change an embedding (docs/results_schema.md): documentation (``*.md``), what
training leaves beside a model (``loss_history.json``, Trainer state and checkpoints, TensorBoard runs),
hidden files, and pickled or other-framework weights (``*.bin``, ``*.h5``, ``onnx/``, ...): every scored or
released folder holds ``model.safetensors``, which sentence-transformers loads in preference to them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import struct
from pathlib import Path

from medenc.core.io import sha256_file

MODEL_HASH_FORMAT = 1  # bump when the rule of what is hashed changes
# Matched against every part of a file's path relative to the model folder.
NOT_HASHED = (
    ".*",
    "*.md",
    "loss_history.json",
    "training_args.bin",
    "trainer_state.json",
    "optimizer*",
    "scheduler*",
    "rng_state*",
    "checkpoint-*",
    "runs",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.h5",
    "*.ot",
    "*.msgpack",
    "onnx",
    "openvino",
)


def _hashed(rel: Path) -> bool:
    """Whether a file (path relative to the model folder) can change what the model computes."""
    return not any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in NOT_HASHED)


def model_files(folder: Path | str) -> list[Path]:
    """The files ``model_hash`` covers, as paths relative to ``folder``, sorted."""
    folder = Path(folder)
    files = (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    return sorted((rel for rel in files if _hashed(rel)), key=lambda rel: rel.as_posix())


def model_hash(folder: Path | str, files: list[Path] | None = None) -> str | None:
    """The id of the model in ``folder`` (see the module doc); None when it is not a folder.

    ``files``: hash these (``model_files`` of the folder a copy was made from) rather than the folder's own,
    so a copy among other files (the release folder) can be checked against the model it copies.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    lines = [f"medenc model hash {MODEL_HASH_FORMAT}"]
    rels = model_files(folder) if files is None else files
    lines += [f"{rel.as_posix()}\0{sha256_file(folder / rel)}" for rel in rels]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def safetensors_shapes(path: Path | str) -> dict[str, list[int]]:
    """Tensor name -> shape, read from a safetensors file's header (the weights are not read).

    Raises ValueError on a file that is not safetensors.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ValueError("shorter than a safetensors header")
        (size,) = struct.unpack("<Q", head)
        if size > 100_000_000:  # a real header is kilobytes; this is not safetensors
            raise ValueError(f"header of {size} bytes")
        raw = fh.read(size)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable header ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError("header is not a mapping")
    return {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def embedding_width(weights: Path | str) -> int | None:
    """The hidden size of a transformer's weights: the width of its word-embedding matrix (None if absent)."""
    for name, shape in safetensors_shapes(weights).items():
        if name.endswith("word_embeddings.weight") and len(shape) == 2:
            return shape[1]
    return None
