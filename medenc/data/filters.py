"""Step 4 of the build: filter the training candidates against the test sets, then split off validation.

Rows with identical sides, rows equal to or near-duplicating a test text and duplicate rows are dropped
(:func:`filter_candidates`); test texts covered by several training texts together are resolved
(:func:`resplit_covered`); whole groups of rows go to validation by hash (:func:`split_train_validation`).
Every drop is counted, by reason and source, for the manifest.
"""

from __future__ import annotations

from collections import Counter

from medenc.core import layout
from medenc.data import leakage
from medenc.data.candidates import training_texts
from medenc.data.read import Parsed
from medenc.data.source import TEXT_FIELDS, Dropped, Rows, Sets, Source, bucket
from medenc.data.test_sets import dedupe, test_texts_by_set

VALIDATION_FRACTION = 0.02
VALIDATION_CAP = 300  # rows per format: validation is a loss sanity check, not a benchmark


def filter_candidates(
    cand: Rows,
    sets: Sets,
    threshold: float,
    dropped: Dropped,
    templated: frozenset[str] = frozenset(),
    keep_identical: frozenset[str] = frozenset(),
    yielding: frozenset[str] = frozenset(),
) -> Rows:
    """Drop rows with identical sides, rows equal to or near-duplicating a test text, and duplicate rows.

    ``templated``: test sets of sources with templated texts (see :attr:`Source.retest`), not checked for
    single-row near-duplicates; ``keep_identical``: row sources whose identical sides are data;
    ``yielding``: test sets whose texts equal to a training text leave the test instead
    (:attr:`Source.retest_equal`, :func:`yield_equal_tests`).
    """
    by_set = test_texts_by_set(sets)
    test_keys = {leakage.key(t) for name, texts in by_set.items() if name not in yielding for t in texts}
    # Near-duplicates of the fixed benchmarks are removed from training; MedQuAD test items covered by
    # training are removed from the test instead (resplit_covered): its answers are templated, so dropping
    # every training answer sharing a boilerplate paragraph would discard thousands of good rows.
    fixed_tests = [t for name, texts in by_set.items() if name not in templated for t in texts]
    out = {}
    for fmt, rows in cand.items():
        cols = TEXT_FIELDS[fmt]
        kept = _drop_identical_sides(fmt, rows, dropped, keep_identical)
        kept, equal = leakage.drop_exact(kept, cols, test_keys)
        for r in equal:
            dropped[f"{fmt}: equals a test text"][r["source"]] += 1
        kept = _drop_flagged(fmt, kept, fixed_tests, threshold, "near-duplicate of a test text", dropped)
        kept, dups = dedupe(kept, layout.COLUMNS[fmt])
        for r in dups:
            dropped[f"{fmt}: duplicate row"][r["source"]] += 1
        out[fmt] = kept
    return out


def resplit_covered(
    cand: Rows,
    sets: Sets,
    owner: dict[str, str],
    registry: tuple[Source, ...],
    parsed: Parsed,
    threshold: float,
    dropped: Dropped,
) -> Rows:
    """Resolve test texts covered by several training texts together (union containment).

    MedQuAD answers are heavily templated (GHR inheritance paragraphs, CancerGov test lists), so a held-out
    answer can be covered by several training answers together. Such test items are removed from the test of
    a source with templated texts (not a fair retrieval target): its sets in ``sets`` are rebuilt without them
    (``owner``: set name -> source folder). For the other test sets the training rows sharing any 8-gram with
    the offending test text are dropped instead.
    """
    pool = [t for fmt, rows in cand.items() for t in training_texts(fmt, rows)]
    rep = leakage.check_leakage(test_texts_by_set(sets), pool, threshold, raise_error=False)
    templated = templated_sets(registry, owner)
    for source in registry:
        if source.retest is None:
            continue
        mine = (o for o in rep["examples"] if owner.get(o["test_set"]) == source.folder)
        bad = frozenset(leakage.key(o["test_text"]) for o in mine)
        if bad:
            reason = f"test: {source.folder} QA removed (templated text covered by training)"
            dropped[reason][source.folder] = _retest(source, parsed, sets, bad, "_qrels")
    bad_other = sorted({o["test_text"] for o in rep["examples"] if o["test_set"] not in templated})
    if not bad_other:
        return cand
    reason = "shares 8-grams with a covered test text"
    return {fmt: _drop_flagged(fmt, rows, bad_other, 0.0, reason, dropped) for fmt, rows in cand.items()}


def yield_equal_tests(
    cand: Rows,
    sets: Sets,
    owner: dict[str, str],
    registry: tuple[Source, ...],
    parsed: Parsed,
    dropped: Dropped,
) -> None:
    """The test texts of a source with :attr:`Source.retest_equal` that equal a training text leave its test
    (its sets in ``sets`` rebuilt without them), so that the training rows stay as they are."""
    train_keys = {leakage.key(t) for fmt, rows in cand.items() for _, t in training_texts(fmt, rows)}
    by_set = test_texts_by_set(sets)
    for source in registry:
        if source.retest is None or not source.retest_equal:
            continue
        mine = [name for name, folder in owner.items() if folder == source.folder]
        bad = frozenset(k for name in mine for t in by_set[name] if (k := leakage.key(t)) in train_keys)
        if bad:
            reason = f"test: {source.folder} queries equal to a training text"
            dropped[reason][source.folder] = _retest(source, parsed, sets, bad, "_queries")


def _retest(source: Source, parsed: Parsed, sets: Sets, bad: frozenset[str], counted: str) -> int:
    """Rebuild ``source``'s test sets in ``sets`` without the texts of keys ``bad`` (its ``retest``); returns
    the rows its sets named ``*<counted>`` lost."""
    assert source.retest is not None
    rebuilt = source.retest(parsed[source.folder], bad)
    removed = sum(len(sets[k]) - len(v) for k, v in rebuilt.items() if k[1].endswith(counted))
    sets.update(rebuilt)
    return removed


def _sets_of(owner: dict[str, str], sources: list[Source]) -> frozenset[str]:
    """The test sets (``owner``: set name -> source folder) of ``sources``."""
    folders = {s.folder for s in sources}
    return frozenset(name for name, folder in owner.items() if folder in folders)


def yielding_sets(registry: tuple[Source, ...], owner: dict[str, str]) -> frozenset[str]:
    """The test sets of the sources whose texts equal to a training text leave the test (``retest_equal``)."""
    return _sets_of(owner, [s for s in registry if s.retest is not None and s.retest_equal])


def templated_sets(registry: tuple[Source, ...], owner: dict[str, str]) -> frozenset[str]:
    """The test sets of the sources with templated texts (those that declare ``retest``)."""
    return _sets_of(owner, [s for s in registry if s.retest is not None])


def split_train_validation(cand: Rows, sets: Sets, registry: tuple[Source, ...]) -> None:
    """Add each format's train and validation sets to ``sets`` (validation: whole groups, by hash).

    Each validation group (:attr:`Source.validation_group`) gets its own draw and cap, so adding a group of
    sources leaves the validation rows of the others (and so what existing recipes train on) as they were.
    """
    group_of = {rs: s.validation_group for s in registry for rs in s.info.row_sources}
    groups = list(dict.fromkeys(["", *(s.validation_group for s in registry)]))
    for fmt, rows in cand.items():
        train, val = [], []
        for g in groups:
            part_train, part_val = _split_validation([r for r in rows if group_of.get(r["source"], "") == g])
            train += part_train
            val += part_val
        sets[("train", fmt)], sets[("validation", fmt)] = train, val


def _drop_identical_sides(fmt: str, rows: list[dict], dropped: Dropped, keep: frozenset[str]) -> list[dict]:
    """The rows whose first two text fields differ (case- and whitespace-insensitively), except ``keep``'s."""
    cols = TEXT_FIELDS[fmt]
    kept = []
    for r in rows:
        # Elsewhere than STS-B (a score of 5 on the benchmark's own scale) identical sides teach nothing.
        same = leakage.key(r[cols[0]]) == leakage.key(r[cols[1]])
        if same and r["source"] not in keep:
            dropped[f"{fmt}: identical sides"][r["source"]] += 1
        else:
            kept.append(r)
    return kept


def _drop_flagged(
    fmt: str, rows: list[dict], test_texts: list[str], threshold: float, reason: str, dropped: Dropped
) -> list[dict]:
    """The rows none of whose text fields alone holds > ``threshold`` of a test text's 8-grams."""
    flags = [False] * len(rows)
    for c in TEXT_FIELDS[fmt]:
        col_flags = leakage.flag_near([str(r[c]) for r in rows], test_texts, threshold)
        flags = [a or b for a, b in zip(flags, col_flags, strict=True)]
    kept = []
    for r, bad in zip(rows, flags, strict=True):
        if bad:
            dropped[f"{fmt}: {reason}"][r["source"]] += 1
        else:
            kept.append(r)
    return kept


def _split_validation(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Whole groups with hash < VALIDATION_FRACTION go to validation, lowest hash first, up to the cap."""
    sizes = Counter(r["_group"] for r in rows)
    cands = sorted((b, g) for g in sizes if (b := bucket(f"validation:{g}")) < VALIDATION_FRACTION)
    chosen: set[str] = set()
    total = 0
    for _, g in cands:
        if total + sizes[g] <= VALIDATION_CAP:
            chosen.add(g)
            total += sizes[g]
    train = [r for r in rows if r["_group"] not in chosen]
    val = [r for r in rows if r["_group"] in chosen]
    return train, val
