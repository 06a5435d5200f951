"""Step 4b of the build: rule-made near misses ("twins") of the training pairs, as triplets of row source
``twins``.

A twin is one side of a training pair with one meaning-bearing word flipped: hyper- and hypo-, type 1 and 2,
acute and chronic, left and right, benign and malignant, positive and negative, increased and decreased, high
and low, with and without, ... ("high blood pressure" -> "low blood pressure"). The pair's other side is the
anchor, so the twin is a negative one word from the positive: what the base model puts *closer* than a
paraphrase (issue 39). Made from the training split only (after the validation split, so no validation text
seeds a training row). A twin row with a text equal to a test text, or sharing a word 8-gram with one, is
dropped, so that no test set changes and the leakage guard still holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from medenc.core import layout
from medenc.core.layout import PAIRS, TRAIN_SPLITS, TRIPLETS
from medenc.data import leakage
from medenc.data.source import TEXT_FIELDS, Dropped, Sets

SOURCE = "twins"
# Tried in this order; the first that matches in a text makes its twin (one flip per text).
_ANTONYMS = (
    ("acute", "chronic"), ("benign", "malignant"), ("positive", "negative"), ("increased", "decreased"),
    ("increase", "decrease"), ("high", "low"), ("upper", "lower"), ("anterior", "posterior"),
    ("superior", "inferior"), ("proximal", "distal"), ("left", "right"), ("with", "without"),
)  # fmt: skip
_FLIP = {a: b for pair in _ANTONYMS for a, b in (pair, pair[::-1])}
_TYPE = re.compile(r"\b(type)(\s+)(1|2|i|ii)\b", re.IGNORECASE)
_TYPE_FLIP = {"1": "2", "2": "1", "i": "ii", "ii": "i"}
_PREFIX = re.compile(r"\b(hyper|hypo)([a-z]{4,})\b", re.IGNORECASE)
_WORD = re.compile(r"\b(" + "|".join(sorted(_FLIP, key=len, reverse=True)) + r")\b", re.IGNORECASE)
# "left the hospital", "right to refuse": not a side of the body
_NOT_A_SIDE = frozenset(
    ["the", "a", "an", "his", "her", "their", "home", "hospital", "to", "of", "and", "or"]
)
_TOKENS = re.compile(r"[a-z]+")
# Names and sentences, not passages: one word flipped in a paragraph leaves a negative nearly all positive.
MAX_WORDS = 30
# "with"/"without" carry meaning in names ("diabetes with/without complications"), less often in prose
# ("begins with"): flipped in texts of at most this many words only.
MAX_WORDS_WITH = 12


def _cased(like: str, word: str) -> str:
    """``word`` in the case of ``like`` (lower, Capitalised or UPPER)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def _prefix_twin(text: str, vocabulary: frozenset[str]) -> str | None:
    for m in _PREFIX.finditer(text):
        other = {"hyper": "hypo", "hypo": "hyper"}[m.group(1).lower()]
        if (other + m.group(2)).lower() in vocabulary:  # "hypoxia" -> "hyperoxia" only if the word exists
            return text[: m.start()] + _cased(m.group(1), other) + m.group(2) + text[m.end() :]
    return None


def _word_twin(text: str) -> str | None:
    short = len(text.split()) <= MAX_WORDS_WITH
    for m in _WORD.finditer(text):
        word = m.group(1)
        if word.lower() in ("with", "without") and not short:
            continue
        if word.lower() in ("left", "right"):
            rest = text[m.end() :].split()
            if not rest or rest[0].lower().strip(".,;:") in _NOT_A_SIDE:
                continue
        return text[: m.start()] + _cased(word, _FLIP[word.lower()]) + text[m.end() :]
    return None


def twin(text: str, vocabulary: frozenset[str]) -> str | None:
    """``text`` with its first flippable word flipped (prefix, then type, then antonyms); None if none is.

    ``vocabulary``: the lowercased words of the corpus; a hyper-/hypo- flip must give one of them.
    """
    if len(text.split()) > MAX_WORDS:
        return None
    found = _prefix_twin(text, vocabulary)
    if found is None and (m := _TYPE.search(text)):
        found = text[: m.start(3)] + _cased(m.group(3), _TYPE_FLIP[m.group(3).lower()]) + text[m.end(3) :]
    return found if found is not None else _word_twin(text)


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """Every lowercased word of ``texts``."""
    return frozenset(w for t in texts for w in _TOKENS.findall(t.lower()))


def twin_rows(pairs: list[dict], words: frozenset[str]) -> list[dict]:
    """A (anchor, positive, twin of the positive) row per pair that has one; where only the anchor has a
    twin, the two sides trade places. One row per pair, in the pairs' order."""
    rows, seen = [], set()
    for r in pairs:
        for anchor, positive in ((r["anchor"], r["positive"]), (r["positive"], r["anchor"])):
            neg = twin(positive, words)
            if neg is not None and leakage.key(neg) not in (leakage.key(anchor), leakage.key(positive)):
                if (anchor, positive, neg) not in seen:  # two sources may hold the same pair
                    seen.add((anchor, positive, neg))
                    rows.append({"anchor": anchor, "positive": positive, "negative": neg, "source": SOURCE})
                break
    return rows


def add_twins(
    sets: Sets, test_texts: dict[str, list[str]], dropped: Dropped, held: frozenset[str] = frozenset()
) -> None:
    """Append the training pairs' twins to the training triplets, less any row with a text equal to a test
    text or sharing one of its word 8-grams.

    Stricter than the filter of the sources' own rows (more than half of a test text's 8-grams): the leakage
    guard counts a test text's 8-grams over all training texts together, and a twin is one word from a text
    that already holds some of them ("... of the distal phalanx of the 2nd finger").
    """
    pairs = sets[("train", PAIRS)]
    training = ((fmt, rows) for (split, fmt), rows in sets.items() if split in TRAIN_SPLITS)
    words = vocabulary(str(r[c]) for fmt, rows in training for r in rows for c in TEXT_FIELDS[fmt])
    tests = [t for texts in test_texts.values() for t in texts]
    test_keys = {leakage.key(t) for t in tests} | held  # a held-out concept's name trains nowhere
    test_grams = set().union(*(leakage.ngrams(t) for t in tests))
    kept = []
    for r in twin_rows(pairs, words):
        texts = [r[c] for c in layout.COLUMNS[TRIPLETS]]
        if any(leakage.key(t) in test_keys or leakage.ngrams(t) & test_grams for t in texts):
            dropped[f"{TRIPLETS}: twin shares a word 8-gram with a test text"][SOURCE] += 1
        else:
            kept.append(r)
    sets[("train", TRIPLETS)] = sets[("train", TRIPLETS)] + kept
