"""Step 3 of the build: every training row the sources yield, by format, before any filtering.

Each source builds its own rows (:attr:`medenc.data.source.Source.training_rows`), its held-out items left
out; this step concatenates them per format.
"""

from __future__ import annotations

from collections.abc import Iterator

from medenc.data.parsing import SkipLog
from medenc.data.read import Parsed
from medenc.data.source import TEXT_FIELDS, Rows, Source
from medenc.data.sources import ROW_ORDER, in_order


def training_candidates(registry: tuple[Source, ...], parsed: Parsed, skips: SkipLog) -> Rows:
    """Every training row by format (graded pairs, pairs, triplets), in ROW_ORDER of the sources."""
    out: Rows = {fmt: [] for fmt in TEXT_FIELDS}
    for source in in_order(registry, ROW_ORDER):
        if source.training_rows is not None:
            for fmt, rows in source.training_rows(parsed[source.folder], skips).items():
                if fmt not in out:  # a programming error in a source module, not bad data
                    raise ValueError(
                        f"source {source.folder!r}: training rows of format {fmt!r}, not one of {list(out)}"
                    )
                out[fmt] += rows
    return out


def training_texts(fmt: str, rows: list[dict]) -> Iterator[tuple[str, str]]:
    """(source, text) of every text field of ``fmt`` rows, as the leakage checks take them."""
    for r in rows:
        for c in TEXT_FIELDS[fmt]:
            yield r["source"], str(r[c])
