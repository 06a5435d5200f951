"""What ordering the suite's texts by tokens instead of characters saves (docs/evaluation.md, "Batches").

Not part of the shipped package: the count behind ``encode_in_chunks``' ``lengths``. For the whole suite at
both length caps, it counts the tokens a model encodes when batches are cut from texts sorted by characters
(before) and by tokens (now), padding included: on a CPU the encoding's cost follows these counts. The
times of whole evaluations, before and after, are in docs/evaluation.md. Takes seconds.

    python tools/batch_order.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from medenc.core.base_model import resolve_base_model
from medenc.core.runtime import load_tokenizer
from medenc.evaluation.backends import BATCH_SIZE
from medenc.evaluation.sets import default_loader, load_set, select_sets, unique_texts
from medenc.evaluation.suite import DEFAULT_MAX_SEQ_LENGTHS


def suite_texts() -> dict[int, list[str]]:
    """The suite's distinct texts per length cap, as ``make evaluate`` encodes them."""
    short, passages = [], []
    for name in select_sets(None):
        s = load_set(default_loader(), name)
        short += s.short_texts
        passages += s.passage_texts
    caps = DEFAULT_MAX_SEQ_LENGTHS
    return {caps["short"]: unique_texts(short), caps["passage"]: unique_texts(passages)}


def encoded_tokens(lengths: Sequence[int], order: Sequence[int], batch_size: int = BATCH_SIZE) -> int:
    """Tokens encoded when batches of ``batch_size`` are cut from ``order``, each padded to its longest."""
    cut = np.asarray(lengths)[np.asarray(order)]
    return int(
        sum(
            cut[s : s + batch_size].max() * len(cut[s : s + batch_size])
            for s in range(0, len(cut), batch_size)
        )
    )


def by_characters(texts: Sequence[str]) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))


def by_tokens(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def count(texts: dict[int, list[str]]) -> None:
    """Print real and encoded tokens per cap and order."""
    print(
        "| cap | texts | real tokens | encoded, by characters | encoded, by tokens |\n|---|---|---|---|---|"
    )
    for cap, items in texts.items():
        tok = load_tokenizer(resolve_base_model(), cap)
        tok.no_padding()
        lengths = [len(e.ids) for e in tok.encode_batch(items)]
        real = sum(lengths)
        chars, tokens = (
            encoded_tokens(lengths, by_characters(items)),
            encoded_tokens(lengths, by_tokens(lengths)),
        )
        ratios = f"{chars:,} ({chars / real:.3f}x) | {tokens:,} ({tokens / real:.3f}x)"
        print(f"| {cap} | {len(items):,} | {real:,} | {ratios} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.parse_args(argv)
    count(suite_texts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
