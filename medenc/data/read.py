"""Step 1 of the build: check every raw file against its pin, then parse every source of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medenc.data import pins
from medenc.data.parsing import SkipLog, source_dir
from medenc.data.source import Source

Parsed = dict[str, Any]  # source folder -> what its reader returned


def check_raw_files(
    root: Path, registry: tuple[Source, ...], accept_upstream: bool = False
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Hash every raw file and compare with the registry's pins, before any parsing or writing.

    Returns (sha256 by raw file, the pinned entries that differ). A difference raises a DataError unless
    ``accept_upstream``: a truncated or changed file must never quietly become a smaller data set.
    """
    # Every folder first: a missing one is reported as such, not as each of its files differing from a pin.
    for source in registry:
        source_dir(root, source)
    raw_files = pins.hash_raw_files(root, registry)
    table = pins.pins_of(registry)
    diffs = table.differences(raw_files)
    if diffs and not accept_upstream:
        raise table.mismatch_error(root, diffs, raw_files)
    return raw_files, diffs


def read_sources(root: Path, registry: tuple[Source, ...], skips: SkipLog) -> Parsed:
    """Parse every source (after :func:`check_raw_files`, which checks that every folder exists)."""
    return {s.folder: s.read(source_dir(root, s), skips) for s in registry}
