"""How often a sentence-level test item needs a name swap the name pairs teach (results/ablation.md, round 5).

Not part of the shipped package: a small lab tool over the prepared data (``make data``).

    python tools/name_swaps.py

The name pairs can move a sentence-level set only where its two sides name one thing differently: the
question says "CLL", the answer "chronic lymphocytic leukemia". So for each item of RQE, BIOSSES and MedQuAD
(question -> its answer) this counts whether one side holds a training name (a word n-gram equal to one side
of a name pair) whose partner the other side holds while the other side lacks the name itself. The lexicon is
every prepared training row of the name sources, more than any recipe samples: an upper bound on what the
pairs could reach.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

NAME_SOURCES = (
    "do_synonym",
    "hpo_lay",
    "icd10_inclusion",
    "icd10_abbreviation",
    "fda_brand",
    "wordnet_synonym",
    "medical_abbreviations",
    "medquad_synonym",
)
MAX_WORDS = 6
MIN_CHARS = 3  # one- and two-letter "names" (abbreviations such as "ca") match everywhere
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lowercased word tokens (the comparison the lexicon uses)."""
    return _WORD.findall(text.lower())


def lexicon(rows: list[tuple[str, str]]) -> dict[str, set[str]]:
    """name -> the names it is paired with, both directions, names of at most ``MAX_WORDS`` words."""
    partners: dict[str, set[str]] = defaultdict(set)
    for a, b in rows:
        ka, kb = " ".join(words(a)), " ".join(words(b))
        if ka == kb or min(len(ka), len(kb)) < MIN_CHARS:
            continue
        if len(ka.split()) <= MAX_WORDS and len(kb.split()) <= MAX_WORDS:
            partners[ka].add(kb)
            partners[kb].add(ka)
    return dict(partners)


def grams(text: str) -> set[str]:
    """Every word n-gram of ``text`` up to ``MAX_WORDS`` words."""
    w = words(text)
    return {" ".join(w[i : i + n]) for n in range(1, MAX_WORDS + 1) for i in range(len(w) - n + 1)}


def swap(left: str, right: str, names: dict[str, set[str]]) -> tuple[str, str] | None:
    """A (name, partner) with the name on one side only and its partner on the other only, or None."""
    gl, gr = grams(left), grams(right)
    for one, other in ((gl, gr), (gr, gl)):
        for name in sorted(one - other):
            if name in names:
                for partner in sorted(names[name]):
                    if partner in other and partner not in one:
                        return name, partner
    return None


def items(prepared: Path) -> dict[str, list[tuple[str, str]]]:
    """The two sides of each item of RQE, BIOSSES and MedQuAD (a question and each relevant answer)."""
    from datasets import load_from_disk

    test = prepared / "test"
    out = {
        s: list(zip(d["sentence1"], d["sentence2"], strict=True))
        for s in ("rqe", "biosses")
        for d in [load_from_disk(str(test / s))]
    }
    queries, corpus = (
        {r["id"]: r["text"] for r in load_from_disk(str(test / f"medquad_{part}"))}
        for part in ("queries", "corpus")
    )
    qrels = load_from_disk(str(test / "medquad_qrels"))
    out["medquad"] = [(queries[r["query_id"]], corpus[r["corpus_id"]]) for r in qrels]
    return out


def report(prepared: Path, examples: int) -> str:
    """The Markdown table of name swaps per set, with a few examples each."""
    from datasets import load_from_disk

    pairs = load_from_disk(str(prepared / "train" / "pairs"))
    rows = [
        (a, p)
        for a, p, s in zip(pairs["anchor"], pairs["positive"], pairs["source"], strict=True)
        if s in NAME_SOURCES
    ]
    names = lexicon(rows)
    lines = [
        f"Lexicon: {len(names):,} names from {len(rows):,} training name pairs ({', '.join(NAME_SOURCES)}).",
        "",
        "| set | items | items with a name swap | share |",
        "|---|---|---|---|",
    ]
    shown = []
    for set_name, sides in items(prepared).items():
        hits = [(a, b, h) for a, b in sides if (h := swap(a, b, names))]
        share = len(hits) / max(len(sides), 1)
        lines.append(f"| {set_name} | {len(sides):,} | {len(hits):,} | {share:.1%} |")
        shown += [
            f'- {set_name}: "{h[0]}" ↔ "{h[1]}" in: {a[:90]!r} / {b[:90]!r}' for a, b, h in hits[:examples]
        ]
    return "\n".join([*lines, "", *shown]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--examples", type=int, default=3, help="examples shown per set")
    args = ap.parse_args(argv)
    print(report(args.prepared, args.examples), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
