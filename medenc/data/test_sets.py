"""Step 2 of the build: every test set, from what the sources yield.

Each source gives its own sets (:attr:`medenc.data.source.TestYield.sets`) and its part of the two shared
retrieval tests built here: ``terms`` (held-out abbreviations and MedQuAD synonyms) and ``concepts`` (ontology
concepts held out by id, among every ontology name).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from medenc.data.concept_groups import Grouping, group_concepts
from medenc.data.read import Parsed
from medenc.data.source import (
    Concept,
    Dropped,
    Sets,
    Source,
    TermQuery,
    TestYield,
    concept_held,
    mark_distractors,
    query_sets,
)
from medenc.data.sources import TEST_ORDER, in_order


def build_test_sets(
    registry: tuple[Source, ...], parsed: Parsed, dropped: Dropped, grouping: Grouping | None = None
) -> tuple[Sets, dict[str, str]]:
    """Every test set, exact duplicate rows removed; also returns the folder of the source of each own set.

    ``grouping``: the cross-source concept hold-out (default: computed from ``registry``).
    """
    grouping = grouping if grouping is not None else group_concepts(registry, parsed)
    sets: Sets = {}
    owner: dict[str, str] = {}
    terms: list[TermQuery] = []
    concepts: list[Concept] = []
    for source in in_order(registry, TEST_ORDER):
        got = TestYield() if source.test_sets is None else source.test_sets(parsed[source.folder])
        if source.held_sets is not None:
            got.sets.update(source.held_sets(parsed[source.folder], partial(grouping.held, source.folder)))
        sets.update(got.sets)
        owner.update({name: source.folder for _, name in got.sets})
        terms += got.terms
        concepts += got.concepts
    if terms:
        terms_sets, skipped = build_terms_test(terms)
        sets.update(terms_sets)
        dropped["test: terms queries equal to a corpus text"]["terms"] = skipped
    if concepts:
        concept_sets, skipped = build_concepts_test(concepts, grouping.held_ontology_ids)
        sets.update(concept_sets)
        dropped["test: concepts queries equal to a corpus text"]["concepts"] = skipped
    for (split, name), rows in list(sets.items()):
        if split == "test" and not name.endswith("_qrels"):
            sets[(split, name)], dups = dedupe(rows, tuple(rows[0]) if rows else ())
            if dups:
                dropped["test_duplicate_rows"][name] += len(dups)
    return sets, owner


def build_terms_test(pairs: list[TermQuery]) -> tuple[Sets, int]:
    """The terms retrieval test: held-out abbreviation -> its meanings, held-out document's synonym -> focus.

    This is the set that asks the project's own question ("MI" next to "heart attack"). Queries share one
    corpus of every held-out meaning and focus. A query whose text equals an unrelated corpus text would rank
    that text first for free, and one equal to its own answer is trivial: both are left out (and counted).
    """
    return query_sets("terms", pairs, [answer for _, _, answer in pairs], "t")


def build_concepts_test(concepts: list[Concept], held_ids: frozenset[str] | None = None) -> tuple[Sets, int]:
    """The concepts retrieval test: a held-out concept's synonym or lay phrasing -> its preferred name.

    The corpus is every ontology preferred name, so the held-out names sit among thousands of distractors.
    Corpus rows carry ``_distractor`` (not written): a name of no held-out concept is no test text for the
    leakage checks, since training on the concepts that are not held out is the point. A name shared with
    a held-out concept (as its name or synonym) is a test text, so every held-out name leaves training.
    ``held_ids``: the held-out concepts after the cross-source grouping (default: by id alone).
    """
    held = [c for c in concepts if (c.id in held_ids if held_ids is not None else concept_held(c.id))]
    pairs = [(f"{c.id}#{n}", s, c.name) for c in held for n, s in enumerate(c.synonyms, start=1)]
    sets, skipped = query_sets("concepts", pairs, [c.name for c in concepts], "c")
    mark_distractors(sets, "concepts", (t for c in held for t in (c.name, *c.synonyms)))
    return sets, skipped


def dedupe(rows: list[dict], cols: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """(first occurrence of each row by ``cols``, the later duplicates)."""
    seen: set[tuple] = set()
    kept, dups = [], []
    for r in rows:
        k = tuple(r[c] for c in cols)
        if k in seen:
            dups.append(r)
        else:
            seen.add(k)
            kept.append(r)
    return kept, dups


def _texts_of(rows: list[dict]) -> Iterator[str]:
    """The text fields of test rows; a distractor (a corpus text held out for no query) is no test text,
    nor a field a row names in ``_distractor_fields`` (a near miss's negative: another concept, which may
    train)."""
    for r in rows:
        if r.get("_distractor"):
            continue
        free = r.get("_distractor_fields", ())
        for k, v in r.items():
            if k in ("sentence1", "sentence2", "anchor", "positive", "negative", "text") and k not in free:
                yield v


def test_texts_by_set(sets: Sets) -> dict[str, list[str]]:
    """Test set name -> its texts, as the leakage checks take them."""
    return {name: list(_texts_of(rows)) for (split, name), rows in sets.items() if split == "test"}
