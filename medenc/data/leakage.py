"""The leakage guard: no test text may appear in the training or validation data.

Two checks, both on lowercased, whitespace-collapsed text:

* exact: a training row with a field equal to a test text is dropped by :func:`drop_exact` (prepare does this
  before the guard; e.g. STS-B repeats sentences across splits, MedQuAD repeats answers across documents);
* near: a test text's *containment* is the fraction of its word 8-grams found anywhere in the training texts;
  :func:`check_leakage` raises :class:`~medenc.core.errors.LeakageError` when it exceeds the threshold. Texts
  with fewer than 8 words are only checked exactly.

The 8-grams are hashed and only the test side is kept in memory, so the full data checks in seconds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from medenc.core.errors import LeakageError
from medenc.core.progress import progress

NGRAM = 8
DEFAULT_THRESHOLD = 0.5
_WORD = re.compile(r"\w+")


def key(text: str) -> str:
    """The comparison key of a text: lowercased with whitespace collapsed."""
    return " ".join(text.lower().split())


def ngrams(text: str, n: int = NGRAM) -> set[int]:
    """Hashed lowercased word n-grams of ``text`` (empty when it has fewer than ``n`` words)."""
    words = _WORD.findall(text.lower())
    return {hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


def drop_exact(
    rows: Sequence[Mapping[str, object]], fields: Sequence[str], test_keys: set[str]
) -> tuple[list[Mapping[str, object]], list[Mapping[str, object]]]:
    """Split ``rows`` into (kept, dropped): a row is dropped when any of ``fields`` equals a test text."""
    kept, dropped = [], []
    for r in rows:
        (dropped if any(key(str(r[f])) in test_keys for f in fields) else kept).append(r)
    return kept, dropped


def flag_near(
    texts: Sequence[str], test_texts: Iterable[str], threshold: float = DEFAULT_THRESHOLD
) -> list[bool]:
    """For each training text: does it *alone* contain more than ``threshold`` of some test text's 8-grams?

    Prepare drops such rows (near-duplicates of a test item, e.g. an RQE test question that MeQSum also
    holds with a "MESSAGE:" prefix, or an STS-B test sentence extended by a few words in training) so that
    the guard can pass without discarding whole sources.
    """
    sizes: list[int] = []
    owner: dict[int, list[int]] = {}
    for t in set(test_texts):
        grams = ngrams(t)
        if grams:
            for g in grams:
                owner.setdefault(g, []).append(len(sizes))
            sizes.append(len(grams))
    flags = []
    for text in texts:
        hits: Counter = Counter()
        for g in ngrams(text):
            for idx in owner.get(g, ()):
                hits[idx] += 1
        flags.append(any(n / sizes[idx] > threshold for idx, n in hits.items()))
    return flags


def check_leakage(
    test_texts: Mapping[str, Iterable[str]],
    train_texts: Iterable[tuple[str, str]],
    threshold: float = DEFAULT_THRESHOLD,
    max_examples: int = 1000,
    raise_error: bool = True,
) -> dict:
    """Check every test text against every training text; return the report or raise LeakageError.

    ``test_texts`` maps a test set name to its texts; ``train_texts`` yields (training source, text). The
    report lists the offenders (test set, test text, containment, the training source/text sharing the most
    8-grams) and the maximum containment per test set. The LeakageError carries the report as ``.report``.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"leakage threshold must be in [0, 1], got {threshold}")
    index = _index_tests(test_texts)
    hits = _scan_training(index, train_texts)
    offenders, max_by_set, checked_ngram = _offenders(index, hits, threshold, list(test_texts))
    report = {
        "threshold": threshold,
        "ngram": NGRAM,
        "test_texts": len(index.items),
        "test_texts_checked_by_ngram": checked_ngram,
        "train_texts": hits.n_train,
        "max_containment": {k: round(v, 4) for k, v in max_by_set.items()},
        "offenders": len(offenders),
        "examples": sorted(offenders, key=lambda o: -o["containment"])[:max_examples],
        "passed": not offenders,
    }
    if offenders and raise_error:
        raise _leakage_error(report)
    return report


@dataclass
class _TestIndex:
    """The test side: unique (set, text) items, and lookups from a key or an 8-gram hash to item indices."""

    items: list[tuple[str, str, set[int]]] = field(default_factory=list)  # (set name, text, grams)
    exact: dict[str, list[int]] = field(default_factory=dict)
    gram_owner: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class _TrainHits:
    """What the training stream hit, per test item index; only the training texts that hit are stored."""

    store: list[tuple[str, str]] = field(default_factory=list)  # (source, text)
    exact: dict[int, int] = field(default_factory=dict)  # item -> first exactly equal text in store
    found: list[set[int]] = field(default_factory=list)  # item -> its 8-grams seen in training
    best_src: list[Counter] = field(default_factory=list)  # item -> store index -> shared 8-grams
    n_train: int = 0


def _index_tests(test_texts: Mapping[str, Iterable[str]]) -> _TestIndex:
    """Index the unique texts of each test set by key and by 8-gram."""
    index = _TestIndex()
    seen: set[tuple[str, str]] = set()
    for name, texts in test_texts.items():
        for t in texts:
            if (name, t) in seen:
                continue
            seen.add((name, t))
            idx = len(index.items)
            grams = ngrams(t)
            index.items.append((name, t, grams))
            index.exact.setdefault(key(t), []).append(idx)
            for g in grams:
                index.gram_owner.setdefault(g, []).append(idx)
    return index


def _scan_training(index: _TestIndex, train_texts: Iterable[tuple[str, str]]) -> _TrainHits:
    """Stream the training texts once, recording which test items each one hits (exactly or by 8-grams)."""
    hits = _TrainHits(found=[set() for _ in index.items], best_src=[Counter() for _ in index.items])
    for source, text in progress(train_texts, desc="leakage check", unit="training texts"):
        hits.n_train += 1
        hit_ref: int | None = None
        for idx in index.exact.get(key(text), ()):
            if hit_ref is None:
                hit_ref = len(hits.store)
                hits.store.append((source, text))
            hits.exact.setdefault(idx, hit_ref)
        shared = [g for g in ngrams(text) if g in index.gram_owner]  # iterate the small side: O(len(text))
        if not shared:
            continue
        if hit_ref is None:
            hit_ref = len(hits.store)
            hits.store.append((source, text))
        for g in shared:
            for idx in index.gram_owner[g]:
                hits.found[idx].add(g)
                hits.best_src[idx][hit_ref] += 1
    return hits


def _offenders(
    index: _TestIndex, hits: _TrainHits, threshold: float, set_names: list[str]
) -> tuple[list[dict], dict[str, float], dict[str, int]]:
    """(offenders, max containment per set, texts checked by 8-grams per set)."""
    offenders = []
    max_by_set: dict[str, float] = {}
    checked_ngram = dict.fromkeys(set_names, 0)
    for idx, (name, text, grams) in enumerate(index.items):
        exact = idx in hits.exact
        if exact:
            containment, ref = 1.0, hits.exact[idx]
        elif grams:
            checked_ngram[name] += 1
            containment = len(hits.found[idx]) / len(grams)
            ref = hits.best_src[idx].most_common(1)[0][0] if hits.best_src[idx] else None
        else:
            containment, ref = 0.0, None
        max_by_set[name] = max(max_by_set.get(name, 0.0), containment)
        if containment > threshold or exact:
            src, ttext = hits.store[ref] if ref is not None else ("?", "?")
            offenders.append(
                {
                    "test_set": name,
                    "test_text": text,
                    "containment": round(containment, 4),
                    "exact": exact,
                    "train_source": src,
                    "train_text": ttext,
                }
            )
    return offenders, max_by_set, checked_ngram


def _leakage_error(report: dict) -> LeakageError:
    """The error for a failed report: the count, the threshold and the first five examples; carries it."""
    lines = [
        f"  [{o['test_set']}] {_short(o['test_text'])!r} ({o['containment']:.0%}) <- "
        f"{o['train_source']}: {_short(o['train_text'])!r}"
        for o in report["examples"][:5]
    ]
    err = LeakageError(
        f"{report['offenders']} test text(s) are contained in the training data beyond "
        f"{report['threshold']:.0%} (word {NGRAM}-grams) or exactly:\n" + "\n".join(lines)
    )
    err.report = report  # type: ignore[attr-defined]
    return err


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
