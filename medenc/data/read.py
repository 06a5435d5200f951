"""Step 1 of the build: check every raw file against its pin, then parse every source of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medenc.core.errors import DataError
from medenc.data import pins
from medenc.data.parsing import SkipLog, source_dir
from medenc.data.source import Source

# Under --accept-upstream a newer file may differ, but not lose most of its lines (or files): a header-only
# or cut file is a broken copy, not a release, and would drop a source's rows without a word.
MIN_KEPT = 0.5

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
    for key in diffs:
        _check_kept(root, key, table, raw_files)
    return raw_files, diffs


def _check_kept(root: Path, key: str, table: pins.PinTable, raw_files: dict[str, str]) -> None:
    """An accepted upstream entry must keep at least MIN_KEPT of its pinned lines or files."""
    pin = table.pins.get(key)
    if pin is None or pin.count is None:
        return
    found = table.found_count(root, key, raw_files, pin)
    if found is not None and found < pin.count * MIN_KEPT:
        raise DataError(
            root / key,
            None,
            f"about the pinned {pin.count} {pin.unit} (at least {int(pin.count * MIN_KEPT)}), even with "
            "--accept-upstream",
            f"{found} {pin.unit}: a cut or emptied copy, not a newer upstream; restore the upstream file",
        )


def _records(parsed: object) -> int | None:
    """How many records a reader returned (a dict of splits: all of them), None where it cannot tell."""
    if isinstance(parsed, dict):
        sizes = [len(v) for v in parsed.values() if hasattr(v, "__len__")]
        return sum(sizes) if sizes else None
    return len(parsed) if hasattr(parsed, "__len__") else None


def read_sources(root: Path, registry: tuple[Source, ...], skips: SkipLog) -> Parsed:
    """Parse every source (after :func:`check_raw_files`, which checks that every folder exists).

    A source that yields no record is refused: its files parsed (a header, nothing after it) but the sets
    would quietly lose it.
    """
    parsed = {}
    for s in registry:
        parsed[s.folder] = s.read(source_dir(root, s), skips)
        if _records(parsed[s.folder]) == 0:
            raise DataError(
                source_dir(root, s), None, f"records in {', '.join(s.files)}", "none (only headers?)"
            )
    return parsed
