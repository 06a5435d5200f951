"""medical_abbreviations: 15 CSVs of abbreviations and their meanings ("HTN" -> "hypertension").

A tenth of the abbreviations (by hash, every meaning together) is held out for the terms test; the rest are
training pairs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, require_file, torn_last_line
from medenc.data.source import Pin, Rows, Source, SourceInfo, TestYield, bucket, row

ABBREV_HEADER = ("Abbreviation/Shorthand", "Meaning", "More Info")
# Fraction of abbreviations (by hash of the normalised abbreviation, all its meanings together) held out of
# training for the terms test: about 400 abbreviations, enough for a CI of a few points on a 2-core budget.
TERMS_ABBREVIATION_FRACTION = 0.1


@dataclass(frozen=True)
class AbbreviationRow:
    """An abbreviation and one of its meanings (``id`` = ``<csv name>:<line>``)."""

    id: str
    abbreviation: str
    meaning: str


def _read_rows(path: Path) -> tuple[str, list[list[str]]]:
    """(text, CSV rows) of one file; undecodable bytes and CSV errors are DataErrors."""
    require_file(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: tolerate a BOM if one appears
            text = fh.read()
        return text, list(csv.reader(io.StringIO(text, newline="")))
    except UnicodeDecodeError as e:
        raise DataError(path, f"byte {e.start}", "UTF-8 text", "undecodable bytes") from e
    except csv.Error as e:
        raise DataError(path, None, "a well-formed CSV", str(e)) from e


def read_file(path: Path) -> list[AbbreviationRow]:
    """One CSV (UTF-8, CRLF, quoted fields) with header Abbreviation/Shorthand, Meaning, More Info."""
    text, rows = _read_rows(path)
    if not rows or tuple(c.strip() for c in rows[0][:3]) != ABBREV_HEADER:
        raise DataError(
            path, "line 1", f"the header {', '.join(ABBREV_HEADER)}", repr(rows[0] if rows else None)
        )
    # The upstream CSVs end without a newline, so only a short last row shows that the file was cut off.
    if not text.endswith(("\n", "\r")) and len(rows[-1]) != len(ABBREV_HEADER):
        raise torn_last_line(path, text, len(rows[-1]), f"{len(ABBREV_HEADER)} fields, as in the header")
    out = []
    for n, cells in enumerate(rows[1:], start=2):
        if not cells:
            continue  # a blank line carries no row
        if len(cells) < 2:
            raise DataError(
                path, f"row {n}", "at least 2 fields (abbreviation, meaning)", f"{len(cells)} field(s)"
            )
        abbr = normalise(cells[0], path, f"row {n}, column 1 (abbreviation)")
        meaning = normalise(cells[1], path, f"row {n}, column 2 (meaning)")
        out.append(AbbreviationRow(f"{path.name}:{n}", abbr, meaning))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[AbbreviationRow]:
    """All rows of the 15 CSVs, in file-name order."""
    csvs = folder / "CSVs"
    files = sorted(csvs.glob("*.csv"))
    if not files:
        raise DataError(
            csvs, None, "the upstream CSVs (e.g. 'B, medical abbreviations.csv')", "no .csv files"
        )
    return [r for f in files for r in read_file(f)]


def held(abbreviation: str) -> bool:
    """Whether an abbreviation (with all its meanings) is held out for the terms test."""
    return bucket(f"terms-test:{leakage.key(abbreviation)}") < TERMS_ABBREVIATION_FRACTION


def test_sets(abbrevs: list[AbbreviationRow]) -> TestYield:
    """The held-out abbreviations, each -> its meanings, as queries of the terms test."""
    terms = [
        (f"abbreviation:{leakage.key(a.abbreviation)}", a.abbreviation, a.meaning)
        for a in abbrevs
        if held(a.abbreviation)
    ]
    return TestYield(terms=terms)


def training_rows(abbrevs: list[AbbreviationRow], skips: SkipLog) -> Rows:
    """Abbreviation->meaning pairs of the abbreviations not held out for the terms test."""
    return {
        layout.PAIRS: [
            row(layout.PAIRS, "medical_abbreviations", leakage.key(a.abbreviation), a.abbreviation, a.meaning)
            for a in abbrevs
            if not held(a.abbreviation)
        ]
    }


_CSV = "CSVs/{}, medical abbreviations.csv"
_PINS = {
    "#-A": ("1fb05f656b6f6f5f3e89ed8328f44d5c74412a9d38f1d9f839599ed55f151bbb", 481),
    "B": ("36ade7aef3a9a8ac21ebe197f8107e5c100613120e8cfa79e1f9262cef396bd7", 146),
    "C": ("d11ca422e8119d96be767fed0caf545eca25f6b354d91ca83a01c5bc98d7cdc4", 427),
    "D": ("338350b6bc782e0a832143d1fc8e1277b8e94785aec561311a9607eb2f4832f9", 170),
    "E-G": ("abc94fbe0583682f7e718fcaca44161fd79faf687c5e93fc258cacb2a038202c", 480),
    "H": ("7cfc93df17e52245a95624ae156628035e0f88ccad82b1e73e539e3cdc868047", 211),
    "I": ("22ddc1f90eb158b56af2c7d7b31e7e8543663594b6467b364a419c15f359ba16", 283),
    "J-L": ("91a5b4189dd85ae29529b7acd5a3bd1da1a4dec6972e78eaedc804e70d9d92e6", 237),
    "M": ("338ef8ef95394735dd7d56104e0e801c391728d22e240a11ef8a60bae8d35aff", 301),
    "N-O": ("d837740539e111c8be8080379da698088a44f40be96cd1eda200ab1a77840f55", 267),
    "P": ("90da97cb9b63cbdd66df092a8f9f5f8d1e1e3c180fa94614d14638233721cf51", 425),
    "Q-R": ("90fdea3f80604cb4980b17169cb25af6aa63cb19a530cb36537f4c7a0b7c8c4f", 195),
    "S": ("f6a46d0ad5db777058d9f883f6435bb12f00711dff577f02f13751e1346d34be", 320),
    "T": ("9ed461d4a0567953ee2dc3108df12844605e85f07b78ae4c9525fb4cb2166dd9", 277),
    "U-Z": ("444c445a0283ea18785a0e0b8288c39113bc647d29463d4ade7e3590f7a76993", 233),
}

SOURCE = Source(
    info=SourceInfo(
        folder="medical_abbreviations",
        row_sources=("medical_abbreviations",),
        name="medical_abbreviations",
        license="MIT",
        role="train+validation: pairs (abbreviation->meaning); test: terms (10% of abbreviations)",
        url="https://github.com/imantsm/medical_abbreviations",
        commit="ce0e8397e88afc953a18681100e75bcc145dd4b5",
        attribution="imantsm/medical_abbreviations (a best-effort list; may contain inaccuracies)",
        bibtex="""@misc{imantsm_medical_abbreviations,
  title = {medical\\_abbreviations: a list of medical abbreviations},
  author = {imantsm},
  howpublished = {\\url{https://github.com/imantsm/medical_abbreviations}},
  note = {commit ce0e8397e88afc953a18681100e75bcc145dd4b5}
}""",
    ),
    files=("CSVs/*.csv",),
    # @ ce0e8397e88a
    pins={_CSV.format(letters): Pin(sha, n) for letters, (sha, n) in _PINS.items()},
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    glob="CSVs/*.csv",
)
