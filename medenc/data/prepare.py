"""Build every prepared set from the raw sources: ``python scripts/prepare_data.py`` (``make data``).

The steps, in order, each a module named after it:

1. :mod:`medenc.data.read`: check every raw file against its pin (:mod:`medenc.data.pins`), then parse every
   source of the registry (:mod:`medenc.data.sources`, one module per source); then
   :mod:`medenc.data.concept_groups`: join the concepts the sources name into groups across sources and hold
   out by group (every name of a held group leaves training, after step 3);
2. :mod:`medenc.data.test_sets`: every test set, from what the sources yield;
3. :mod:`medenc.data.candidates`: every training row, by format;
4. :mod:`medenc.data.filters`: drop rows that equal or near-duplicate a test text (or, for a test-only
   yardstick, take its texts equal to a training text out of its test), resolve test texts covered by
   training together, split off validation; then :mod:`medenc.data.twins`: rule-made near misses of the
   training pairs, as triplets;
5. the leakage guard (:func:`leakage_guard`, over :mod:`medenc.data.leakage`): no test text in training;
6. :mod:`medenc.data.write`: every set, ``manifest.json``, ``leakage_report.json`` and ``checksums.json``
   (:mod:`medenc.data.checksums`: every file's size and sha256, checked before training reads them), written
   to a temporary sibling and renamed into place; on a leakage failure renamed to ``<prepared>.failed/``
   (with the report), the previous prepared folder left untouched.

Every split is chosen by sha256 of a stable id, never by a random shuffle, so two runs give the same rows in
the same order; the manifest's ``notes`` record the other decisions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import LeakageError
from medenc.core.lock import refused_writes
from medenc.core.paths import data_dir, prepared_dir
from medenc.data import candidates, concept_groups, filters, leakage, read, test_sets, twins
from medenc.data.parsing import SkipLog
from medenc.data.source import TEXT_FIELDS, Source
from medenc.data.sources import REGISTRY
from medenc.data.write import Prepared, write


def build(
    root: Path,
    threshold: float = leakage.DEFAULT_THRESHOLD,
    accept_upstream: bool = False,
    registry: tuple[Source, ...] = REGISTRY,
) -> Prepared:
    """Check the raw files of ``registry``'s sources under ``root`` against their pins, read them and build
    every set in memory; run the leakage guard."""
    out = Prepared()
    skips = SkipLog()
    out.raw_files, out.upstream_accepted = read.check_raw_files(root, registry, accept_upstream)
    parsed = read.read_sources(root, registry, skips)
    grouping = concept_groups.group_concepts(registry, parsed)
    out.sets, owner = test_sets.build_test_sets(registry, parsed, out.dropped, grouping)
    cand = candidates.training_candidates(registry, parsed, skips)
    cand = concept_groups.drop_held(cand, grouping, out.dropped)
    templated = filters.templated_sets(registry, owner)
    keep = frozenset(rs for s in registry if s.keep_identical_sides for rs in s.info.row_sources)
    yielding = filters.yielding_sets(registry, owner)
    cand = filters.filter_candidates(cand, out.sets, threshold, out.dropped, templated, keep, yielding)
    filters.yield_equal_tests(cand, out.sets, owner, registry, parsed, out.dropped)
    cand = filters.resplit_covered(cand, out.sets, owner, registry, parsed, threshold, out.dropped)
    filters.split_train_validation(cand, out.sets, registry)
    twins.add_twins(out.sets, test_sets.test_texts_by_set(out.sets), out.dropped, grouping.held_keys)
    out.dropped["skipped upstream quirks"] = Counter(skips.counts)
    for s in registry:
        if s.manifest_info is not None:
            out.info.update(s.manifest_info(parsed[s.folder]))
    if any(s.concept_names is not None for s in registry):
        out.info.update(grouping.info())
    out.info["validation_fraction"] = filters.VALIDATION_FRACTION
    out.info["validation_cap_per_format"] = filters.VALIDATION_CAP
    leakage_guard(out, threshold)
    return out


def leakage_guard(out: Prepared, threshold: float) -> None:
    """Check the final training and validation sets against every test set; store the report in ``out``.

    On failure the LeakageError carries ``out`` as ``.prepared``, so that prepare can write it aside.
    """
    train_texts = (
        t
        for split in layout.TRAIN_SPLITS
        for fmt in TEXT_FIELDS
        for t in candidates.training_texts(fmt, out.sets[(split, fmt)])
    )
    try:
        out.leakage_report = leakage.check_leakage(
            test_sets.test_texts_by_set(out.sets), train_texts, threshold
        )
    except LeakageError as e:
        out.leakage_report = e.report  # type: ignore[attr-defined]
        e.prepared = out  # type: ignore[attr-defined]
        raise


def prepare(
    target: Path | None = None,
    threshold: float = leakage.DEFAULT_THRESHOLD,
    accept_upstream: bool = False,
    registry: tuple[Source, ...] = REGISTRY,
    root: Path | None = None,
) -> tuple[Path, dict]:
    """Build and write everything; return (prepared folder, manifest). Raises DataError or LeakageError.

    ``accept_upstream``: use raw files that differ from their pins (a newer upstream, on purpose);
    ``root``: the raw data root (default ``$DATA_DIR``); ``registry``: the sources to build from.
    """
    root = Path(root) if root is not None else data_dir(tuple(s.folder for s in registry))
    target = Path(target) if target is not None else prepared_dir()
    # A full disk or an unwritable folder while writing is one line naming the path, not a traceback.
    writing = refused_writes(target, "make data", "PREPARED_DIR")
    try:
        prep = build(root, threshold, accept_upstream, registry)
    except LeakageError as e:
        with writing:
            where = write(e.prepared, root, target, registry, failed=True)  # type: ignore[attr-defined]
        raise LeakageError(f"{e}\nfull report: {where / layout.LEAKAGE_REPORT}") from None
    with writing:
        path = write(prep, root, target, registry)
    return path, json.loads((path / layout.MANIFEST).read_text())
