"""The pinned sha256 of every upstream file the sources read, checked before anything is parsed.

Each source module declares the pins of its files (:attr:`medenc.data.source.Source.pins`, at the upstream
commit named in its SOURCE.txt); :class:`PinTable` gathers them, keyed by path under the raw data root.
``make data`` hashes every raw file it reads (:func:`hash_raw_files`) and compares the hashes with the pins
before anything is parsed or written: a truncated, re-encoded or newer upstream file would otherwise become a
smaller or different data set without a word. A difference stops the build, naming the file, both hashes and
both line counts, unless ``--accept-upstream`` is given; the manifest then records the entries that differ
(``upstream_accepted``).

MedQuAD's 11,274 XML documents are pinned as one digest per subset folder (:func:`folder_digest`), not one
line each. A SOURCE.txt is our note about the copy, not an upstream file, so it is not pinned. After a
deliberate upstream update, ``python scripts/prepare_data.py --print-pins`` prints the pins of ``$DATA_DIR``
to paste into the source modules.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from medenc.core.errors import DataError
from medenc.core.io import sha256_file
from medenc.core.progress import progress
from medenc.data.source import Pin, Source
from medenc.data.sources import REGISTRY

ACCEPT_HINT = (
    "restore the unmodified upstream file (its folder's SOURCE.txt names the repository, commit and path), "
    "or accept a newer upstream version on purpose with `make data DATA_ARGS=--accept-upstream` "
    "(python scripts/prepare_data.py --accept-upstream): the manifest then records what differs"
)
# Text files, pinned with their line count (the --accept-upstream floor); NFCorpus and Cochrane name theirs
# by role.
_TEXT_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".xml", ".txt", ".obo", ".noun")
_TEXT_SUFFIXES += (".docs", ".queries", ".qrel", ".source", ".target", ".doi")


def folder_digest(files: dict[str, str]) -> str:
    """sha256 over the sorted ``"<relative path>  <sha256>"`` lines of a folder's files."""
    lines = "".join(f"{rel}  {sha}\n" for rel, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def count_lines(path: Path) -> int:
    """Lines of a file, a last line without a newline included (several upstream CSVs end without one)."""
    data = path.read_bytes()
    return data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))


def _describe(sha: str | None, count: int | None, unit: str, folder: bool) -> str:
    """``sha256 <hex>, <count> <unit>`` (count where known), or what stands for a missing entry."""
    if sha is None:
        return f"0 {unit}" if folder else "no such file"
    return f"sha256 {sha}" + (f", {count} {unit}" if count is not None else "")


@dataclass(frozen=True)
class PinTable:
    """The pins of a registry's sources, keyed by path under the raw data root."""

    pins: dict[str, Pin]
    folder_pinned: frozenset[str] = frozenset()  # source folders pinned per subset folder

    def pin_key(self, rel: str) -> str | None:
        """The key covering raw file ``rel`` (its subset folder for a folder-pinned source); None for a
        SOURCE.txt."""
        parts = rel.split("/")
        if parts[-1] == "SOURCE.txt":
            return None
        if parts[0] in self.folder_pinned and len(parts) > 2:
            return "/".join(parts[:2])
        return rel

    def is_folder(self, key: str) -> bool:
        """Whether ``key`` names a folder pinned as a whole."""
        return key.split("/")[0] in self.folder_pinned

    def group(self, raw_files: dict[str, str]) -> dict[str, dict[str, str]]:
        """The raw files' hashes by the key that covers them (SOURCE.txt files left out)."""
        out: dict[str, dict[str, str]] = defaultdict(dict)
        for rel, sha in raw_files.items():
            key = self.pin_key(rel)
            if key is not None:
                out[key][rel] = sha
        return dict(out)

    def found_digests(self, raw_files: dict[str, str]) -> dict[str, str]:
        """Key -> the sha256 found: a file's own hash, a pinned folder's :func:`folder_digest`."""
        return {k: folder_digest(v) if self.is_folder(k) else v[k] for k, v in self.group(raw_files).items()}

    def differences(self, raw_files: dict[str, str]) -> dict[str, str | None]:
        """Every pinned key whose found sha256 differs (None: missing), and every raw file not pinned."""
        found = self.found_digests(raw_files)
        return {
            k: found.get(k)
            for k in sorted(self.pins.keys() | found.keys())
            if k not in self.pins or self.pins[k].sha256 != found.get(k)
        }

    def found_count(self, root: Path, key: str, raw_files: dict[str, str], pin: Pin | None) -> int | None:
        """What is on disk for ``key`` in the pin's unit: files of a folder, lines of a text file."""
        if self.is_folder(key):
            return len(self.group(raw_files).get(key, {}))
        path = root / key
        if pin is None or pin.count is None or not path.is_file():
            return None  # a binary or unpinned file: its hash alone says it differs
        return count_lines(path)

    def mismatch_error(
        self, root: Path, diffs: dict[str, str | None], raw_files: dict[str, str]
    ) -> DataError:
        """The DataError for the first differing entry: both hashes and counts, the others named, the fix."""
        key, found = next(iter(diffs.items()))
        pin, folder = self.pins.get(key), self.is_folder(key)
        unit = pin.unit if pin is not None else ("files" if folder else "lines")
        if pin is None:
            expected = "nothing here (not among the pinned upstream files)"
        else:
            kind = "folder (one sha256 over its files' sha256)" if folder else "file"
            expected = f"the pinned upstream {kind}: {_describe(pin.sha256, pin.count, unit, folder)}"
        found_text = _describe(found, self.found_count(root, key, raw_files, pin), unit, folder)
        others = list(diffs)[1:]
        if others:
            found_text += (
                f" (and {len(others)} more differ: {', '.join(others[:5])}{' ...' * (len(others) > 5)})"
            )
        return DataError(
            root / key, None, expected, f"{found_text}. Truncated, changed or newer: {ACCEPT_HINT}"
        )

    def current(self, root: Path, raw_files: dict[str, str]) -> dict[str, Pin]:
        """Pins for the raw files as they are now (to update the pins after a deliberate upstream update)."""
        out = {}
        for key, sha in self.found_digests(raw_files).items():
            if self.is_folder(key):
                out[key] = Pin(sha, self.found_count(root, key, raw_files, None), "files")
            else:
                text = (root / key).suffix in _TEXT_SUFFIXES
                out[key] = Pin(sha, count_lines(root / key) if text else None)
        return out


def pins_of(registry: tuple[Source, ...]) -> PinTable:
    """The pin table of ``registry``: each source's pins, keyed ``<folder>/<path>``."""
    pins = {f"{s.folder}/{rel}": pin for s in registry for rel, pin in s.pins.items()}
    return PinTable(pins, frozenset(s.folder for s in registry if s.folder_pinned))


def raw_paths(root: Path, source: Source) -> list[Path]:
    """The raw files of ``source`` to hash: its glob's matches, else its pinned files; and SOURCE.txt."""
    folder = root / source.folder
    files = sorted(folder.glob(source.glob)) if source.glob else [folder / rel for rel in source.pins]
    return [*files, folder / "SOURCE.txt"]


def hash_raw_files(root: Path, registry: tuple[Source, ...] = REGISTRY) -> dict[str, str]:
    """sha256 of every raw file read (and each SOURCE.txt), keyed by path relative to ``root``."""
    # A missing file is left out: the pin check names it, or (with --accept-upstream) its reader does.
    files = [f for s in registry for f in raw_paths(root, s) if f.is_file()]
    hashed = progress(files, desc="hashing raw files", unit="files")  # MedQuAD alone has 11k files
    return {str(f.relative_to(root)): sha256_file(f) for f in hashed}


def repin(root: Path, registry: tuple[Source, ...] = REGISTRY) -> tuple[Source, ...]:
    """``registry`` with each source's pins replaced by those of its files under ``root`` as they are now."""
    now = pins_of(registry).current(root, hash_raw_files(root, registry))
    out = []
    for s in registry:
        mine = {k.split("/", 1)[1]: p for k, p in sorted(now.items()) if k.split("/", 1)[0] == s.folder}
        out.append(dataclasses.replace(s, pins=mine))
    return tuple(out)


def format_pins(root: Path, registry: tuple[Source, ...] = REGISTRY) -> str:
    """The ``pins={...}`` entries of every source module, for the raw files under ``root`` as they are now."""
    lines = []
    for s in repin(root, registry):
        lines.append(f"# medenc/data/sources/{s.folder}.py")
        for rel, pin in s.pins.items():
            args = [repr(pin.sha256), repr(pin.count)] + ([repr(pin.unit)] if pin.unit != "lines" else [])
            lines.append(f"    {rel!r}: Pin({', '.join(args)}),")
    return "\n".join(lines)


# Every pin of the registry, keyed by path under the raw data root (for lookups and messages).
PINS: dict[str, Pin] = pins_of(REGISTRY).pins
