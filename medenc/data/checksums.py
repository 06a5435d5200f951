"""The prepared files' sizes and sha256, written by ``make data`` beside the manifest and checked before use.

``manifest.json`` identifies the prepared data (its sha256 is the data hash every run and evaluation records)
and keeps its bytes, so that hash stays what it was for the pinned data. ``checksums.json`` binds the files'
contents to it: the manifest's own sha256, and the size and sha256 of every other file ``make data`` wrote.
:func:`verify` checks them before training or evaluation reads anything: sizes every call, contents once per
process (again only when a file's size or mtime changes). A prepared file changed, cut short or replaced
after ``make data``, a manifest that is not the one the files were written with, or a folder without the
checksums is refused, naming the file and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.core.io import sha256_file

CHECKSUMS = "checksums.json"
FORMAT = 1
FIX = "run `make data` (python scripts/prepare_data.py) to prepare the data again"

# (path, size, mtime_ns) -> sha256: a file is hashed once per process unless it changes on disk.
_HASHED: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def file_table(folder: Path) -> dict[str, dict[str, object]]:
    """Every file under ``folder`` but the manifest and the checksums: relative path -> bytes, sha256."""
    skip = {layout.MANIFEST, CHECKSUMS}
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in skip
    )
    return {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    }


def write_checksums(folder: Path) -> None:
    """``folder/checksums.json`` for the files in ``folder`` now (the last step of writing a prepared one)."""
    doc = {
        "format": FORMAT,
        "manifest_sha256": sha256_file(folder / layout.MANIFEST),
        "files": file_table(folder),
    }
    (folder / CHECKSUMS).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def read_manifest(folder: Path) -> dict:
    """The manifest as a JSON object; missing, truncated, not UTF-8 or not an object is a DataError."""
    path = folder / layout.MANIFEST
    if not path.is_file():
        raise DataError(path, None, f"the data manifest; {FIX}", "no such file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, None, f"the JSON manifest `make data` writes; {FIX}", _short(e)) from e
    if not isinstance(doc, dict):
        raise DataError(path, None, f"a JSON object; {FIX}", type(doc).__name__)
    return doc


def _short(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e)[:120]}"


def _read_checksums(folder: Path) -> dict[str, dict]:
    """The ``files`` table of ``checksums.json``, after checking its shape."""
    path = folder / CHECKSUMS
    if not path.is_file():
        found = "no such file (a folder prepared by an older medenc, or copied without it)"
        raise DataError(path, None, f"the prepared files' sha256 that `make data` writes; {FIX}", found)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, None, f"valid JSON; {FIX}", _short(e)) from e
    files = doc.get("files") if isinstance(doc, dict) else None
    ok = (
        isinstance(files, dict)
        and doc.get("format") == FORMAT
        and isinstance(doc.get("manifest_sha256"), str)
        and all(isinstance(v, dict) and {"bytes", "sha256"} <= v.keys() for v in files.values())
    )
    if not ok:
        raise DataError(path, None, f"format {FORMAT} with manifest_sha256 and files; {FIX}", "another shape")
    return doc


def verify(folder: Path) -> str:
    """Check ``folder`` against its checksums; return the manifest's sha256 (the data hash)."""
    read_manifest(folder)
    doc = _read_checksums(folder)
    manifest_sha = _sha256(folder / layout.MANIFEST)
    if manifest_sha != doc["manifest_sha256"]:
        raise DataError(
            folder / layout.MANIFEST,
            None,
            f"the manifest the prepared files were written with (sha256 {doc['manifest_sha256'][:16]}...); "
            + FIX,
            f"sha256 {manifest_sha[:16]}...",
        )
    for rel, want in doc["files"].items():
        _check_size(folder / rel, want["bytes"])
    for rel, want in doc["files"].items():
        got = _sha256(folder / rel)
        if got != want["sha256"]:
            raise DataError(
                folder / rel,
                None,
                f"the contents `make data` wrote (sha256 {str(want['sha256'])[:16]}...); {FIX}",
                f"sha256 {got[:16]}...: changed after `make data`",
            )
    return manifest_sha


def _check_size(path: Path, size: object) -> None:
    if not path.is_file():
        raise DataError(path, None, f"a prepared file listed in {CHECKSUMS}; {FIX}", "no such file")
    found = path.stat().st_size
    if found != size:
        raise DataError(path, None, f"{size} bytes, as `make data` wrote it; {FIX}", f"{found} bytes")
