"""Parsing helpers every source module shares: text clean-up, required files, XML / JSON / quoted TSV, torn
last lines, and the log of upstream quirks skipped on purpose.

Each helper raises :class:`~medenc.core.errors.DataError` naming the file, the row or element, and what was
expected whenever the input does not look like the upstream format.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data.source import Source

_WS = re.compile(r"\s+")


@dataclass
class SkipLog:
    """Upstream quirks that are skipped on purpose, by reason, so the manifest can report them."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` skipped items for ``reason``."""
        self.counts[reason] = self.counts.get(reason, 0) + n


def normalise(text: str | None, path: str | Path, where: str, what: str = "a non-empty text") -> str:
    """Collapse whitespace and strip; an empty result is a DataError naming ``path`` and ``where``."""
    out = _WS.sub(" ", text or "").strip()
    if not out:
        raise DataError(path, where, what, "an empty text")
    return out


def clean_or_none(text: str | None) -> str | None:
    """Collapse whitespace and strip; None for an empty text (for fields that may legitimately be empty)."""
    out = _WS.sub(" ", text or "").strip()
    return out or None


def add_unique(items: list[str], *new: str) -> None:
    """Append the ``new`` items not yet in ``items`` (order kept: splits and pairs must be stable)."""
    items.extend(n for n in dict.fromkeys(new) if n not in items)


def source_dir(root: Path, source: Source) -> Path:
    """``root/<folder>`` if it is a folder, else a DataError saying which upstream files to put there."""
    name = source.folder
    path = root / name
    if not path.is_dir():
        raise DataError(
            path,
            None,
            f"the source folder '{name}/' under the raw data root holding {', '.join(source.files)} "
            f"(the unmodified upstream files, see {root / 'README.md'}; or set DATA_DIR to your copy)",
            "no such folder",
        )
    return path


def require_file(path: Path) -> Path:
    """``path`` if it is a file, else a DataError asking for the unmodified upstream file."""
    if not path.is_file():
        raise DataError(path, None, "this upstream file (unmodified, see the data README)", "no such file")
    return path


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 upstream file; undecodable bytes are a DataError naming the byte and line."""
    require_file(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(path, f"byte {e.start} (line {line})", "UTF-8 text", "undecodable bytes") from None


def torn_last_line(path: Path, text: str, fields: int, expected: str) -> DataError:
    """The error for a file whose last line is cut off (a truncated download or copy), naming that line."""
    line = text.count("\n") + 1
    return DataError(
        path,
        f"line {line} (the last)",
        expected,
        f"{fields} field(s) and no final newline: the file looks cut off mid-line; restore the unmodified "
        "upstream file (its folder's SOURCE.txt names the repository, commit and path)",
    )


def stream_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its line ending) of a big UTF-8 upstream file, read as a stream.

    A last line without a newline (a cut-off copy) and undecodable bytes are DataErrors naming the line.
    """
    require_file(path)
    n = 0
    with path.open(encoding="utf-8", newline="") as fh:
        try:
            for n, line in enumerate(fh, start=1):
                if not line.endswith("\n"):
                    raise DataError(
                        path,
                        f"line {n} (the last)",
                        "a final newline, as upstream has",
                        "none: the file looks cut off mid-line; restore the unmodified upstream file (its "
                        "folder's SOURCE.txt names where it comes from)",
                    )
                yield n, line.rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise DataError(path, f"line {n + 1}", "UTF-8 text", "undecodable bytes") from e


def parse_xml(path: Path) -> ET.Element:
    """The root element of an XML file; a syntax error becomes a DataError naming line and column."""
    require_file(path)
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        raise DataError(path, f"line {line}, column {col}", "well-formed XML", str(e)) from e


def read_json(path: Path) -> object:
    """A UTF-8 JSON file; a syntax error becomes a DataError naming line and column."""
    require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else None
        raise DataError(path, where, "valid UTF-8 JSON", str(e)) from e


def _literal(value: str, path: Path, where: str) -> str:
    """The text of a double-quoted value, an optional language tag after it (``"Open comedo"@en``)."""
    body, closed, suffix = value[1:].rpartition('"')
    tag_ok = suffix == "" or (suffix.startswith("@") and suffix[1:].replace("-", "").isalpha())
    if not value.startswith('"') or not closed or not tag_ok or '"' in body:
        raise DataError(path, where, 'a value in double quotes ("text" or "text"@en)', repr(value))
    return normalise(body, path, where)


def read_quoted_tsv(
    path: Path, header: tuple[str, ...], quoted: tuple[int, ...]
) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a tab-separated file with ``header``; the ``quoted`` columns unquoted."""
    text = read_utf8(path)
    lines = text.split("\n")
    if lines[-1]:  # the upstream file ends with a newline: a last line without one was cut off
        raise torn_last_line(path, text, len(lines[-1].split("\t")), "a final newline, as upstream has")
    if tuple(lines[0].rstrip("\r").split("\t")) != header:
        raise DataError(path, "line 1", f"the header {' | '.join(header)}", repr(lines[0]))
    rows = []
    for n, line in enumerate(lines[1:-1], start=2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            expected = f"{len(header)} tab-separated fields ({', '.join(header)})"
            raise DataError(path, f"line {n}", expected, f"{len(fields)} field(s)")
        for c in quoted:
            fields[c] = _literal(fields[c], path, f"line {n}, column {c + 1} ({header[c]})")
        rows.append((n, fields))
    return rows


def read_source_txt(root: Path, source: Source) -> dict[str, str]:
    """The ``key: value`` lines of a source's SOURCE.txt (source, commit, commit_date, license)."""
    path = source_dir(root, source) / "SOURCE.txt"
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^([a-z_]+):\s*(.*)$", line)
            if m and m.group(1) in ("source", "commit", "commit_date", "license"):
                out[m.group(1)] = m.group(2).strip()
    return out
