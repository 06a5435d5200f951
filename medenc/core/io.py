"""Small file and number helpers every stage shares: hashing, atomic JSON writes, figure formatting."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (the base model's weights are 438 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented JSON, then rename: a kill never leaves a half-written record."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def fmt(x: float | None, signed: bool = False, digits: int = 4, missing: str = "–") -> str:
    """A figure for tables and logs: fixed decimals, ``+`` on differences, ``missing`` for None."""
    if x is None:
        return missing
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


# Marks a difference from the base model whose paired 95% CI includes zero, in every table we write.
NOT_SIGNIFICANT = "†"


class PairedDifference(Protocol):
    """A paired difference with its CI (``medenc.evaluation.results.Delta``)."""

    diff: float
    ci_low: float | None
    ci_high: float | None


def fmt_delta(delta: PairedDifference, digits: int = 4) -> str:
    """``+0.0123 [+0.0040, +0.0210]``, with ``NOT_SIGNIFICANT`` where the CI includes zero.

    ``delta``: a paired difference as the evaluation reads it back (diff, ci_low, ci_high); the marker
    follows the CI itself, so a table cannot contradict its own brackets.
    """
    text = fmt(delta.diff, signed=True, digits=digits)
    lo, hi = delta.ci_low, delta.ci_high
    if lo is None or hi is None:
        return text
    text += f" [{fmt(lo, True, digits)}, {fmt(hi, True, digits)}]"
    return text + (f" {NOT_SIGNIFICANT}" if lo <= 0 <= hi else "")


def utc_now() -> str:
    """The current UTC time as run records write it: ``2026-11-28T10:00:00Z``."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
