"""Progress on long work: a tqdm bar on a terminal, a log line every so often elsewhere (CI, log files).

One helper for every stage (evaluation's encoding, phase 3's mining, data preparation). A bar redrawn into a
file is noise (``medenc.release.publish.clean_log`` has to strip it), and no bar at all leaves minutes
without a sign of life; so where stderr is not a terminal the work is reported as plain log lines, at most one
every ``MEDENC_PROGRESS_SECONDS`` (default 30) seconds, and a closing line for work that took that long.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger("medenc.progress")

T = TypeVar("T")

# Batches per encode call in ``encode_in_chunks``: two batches of 256-token passages take about 30 s on a
# 2-core CPU, so a log line can follow every chunk without making the calls so small that they cost.
CHUNK_BATCHES = 2


def log_every_s() -> float:
    """Seconds between two progress lines when there is no bar (``MEDENC_PROGRESS_SECONDS``, default 30)."""
    return float(os.environ.get("MEDENC_PROGRESS_SECONDS", "30"))


def show_progress_bar() -> bool:
    """Whether to draw bars: only on a terminal, where a redraw replaces the line instead of piling up."""
    return sys.stderr.isatty()


class Progress:
    """Counts work done (``update``); a tqdm bar on a terminal, else a log line every ``log_every_s()``.

    ``enabled=False`` (e.g. on the non-main processes of a distributed run) reports nothing.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "items", enabled: bool = True):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._enabled, self._every, self._logged = enabled, log_every_s(), False
        self._t0 = self._last = time.monotonic()
        self._bar = None
        if enabled and show_progress_bar():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=sys.stderr)

    def update(self, n: int = 1) -> None:
        """Add ``n`` units of work done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total  # close() says so
        if self._enabled and not finished and now - self._last >= self._every:
            self._last, self._logged = now, True
            log.info("%s", self._line(now))

    def _line(self, now: float) -> str:
        """``encoding base (passages): 1,280/3,412 texts (38%), 45 s, about 73 s left``."""
        elapsed = now - self._t0
        if not self.total:
            return f"{self.desc}: {self.done:,} {self.unit}, {elapsed:.0f} s"
        share = self.done / self.total
        left = f", about {elapsed * (1 - share) / share:.0f} s left" if 0 < share < 1 else ""
        # "38%" is never followed by "|": clean_log's bar pattern must not eat this line.
        return f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} ({share:.0%}), {elapsed:.0f} s{left}"

    def close(self) -> None:
        """End the bar; for work that was long (or reported), a line saying it is done and what it took."""
        if self._bar is not None:
            self._bar.close()
            return
        took = time.monotonic() - self._t0
        if self._enabled and (self._logged or took >= self._every):
            log.info("%s: done, %s %s in %.0f s", self.desc, f"{self.done:,}", self.unit, took)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "items", enabled: bool = True
) -> Iterator[T]:
    """``items``, reporting each one done through ``Progress`` (``total`` defaults to ``len(items)``)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update()


def encode_in_chunks(
    encode: Callable[..., Any],
    texts: Sequence[str],
    *,
    batch_size: int,
    desc: str,
    enabled: bool = True,
    lengths: Sequence[int] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """``encode(texts, ...)`` a few batches at a time, longest texts first, reporting progress between calls.

    ``encode`` is ``SentenceTransformer.encode`` or a sibling (``encode_query``, ``encode_document``); one
    global length sort (the input order is restored) keeps padding as low as one call over all texts would.
    ``lengths``: each text's tokens (``medenc.core.modeling.token_lengths``), the length a batch pads to;
    without them, characters. Sorting by characters left 17% of the suite's encoded tokens as padding
    (medical names split into many word pieces for their letters), by tokens 0.4% (docs/evaluation.md).
    """
    if lengths is not None and len(lengths) != len(texts):
        raise ValueError(f"{len(lengths)} lengths for {len(texts)} texts")
    size_of = lengths if lengths is not None else [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -size_of[i])
    size = batch_size * CHUNK_BATCHES
    kwargs = {**kwargs, "convert_to_numpy": True, "show_progress_bar": False}  # the bar is ours
    parts = []
    with Progress(len(texts), desc, "texts", enabled) as bar:
        for start in range(0, len(order), size):
            chunk = [texts[i] for i in order[start : start + size]]
            parts.append(np.asarray(encode(chunk, batch_size=batch_size, **kwargs)))
            bar.update(len(chunk))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    emb = np.concatenate(parts)
    out = np.empty_like(emb)
    out[np.asarray(order)] = emb
    return out
