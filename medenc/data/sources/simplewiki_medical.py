"""Medical Wikipedia sentences aligned with Simple English Wikipedia (Van den Bercken, Sips and Lofi, 2019).

Three gzip-compressed, tab-separated UTF-8 files, one pair a line: English Wikipedia sentence (medical
articles) TAB Simple English Wikipedia sentence [TAB alignment score]. Sentences are word-tokenised
("( 8,000 ft ) ,"): both sides are detokenised (:func:`medenc.data.sources.laymaker.detokenize`).

Which file trains: only ``expert_fully_aligned`` (2,267 pairs checked by experts to say the same thing).
``expert_partially_aligned`` pairs share only part of their content (the simple sentence drops or adds
facts): not paraphrases. ``automatic_fully_aligned`` (scored by a similarity aligner) has errors, some of them
near misses of one word ("being uncircumcised" / "being circumcised"): a positive pair that teaches exactly
what issue 30 must unteach. Both are kept in the records (for near-miss candidates, with care), never
yielded. Pairs with the same text on both sides (the simple article copied the sentence) are no pairs.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, require_file
from medenc.data.source import Pin, Rows, Source, SourceInfo, row
from medenc.data.sources.laymaker import detokenize

EXPERT_FULL = "expert_fully_aligned.txt.gz"
EXPERT_PARTIAL = "expert_partially_aligned.txt.gz"
AUTOMATIC = "automatic_fully_aligned.txt.gz"
FIELDS = {EXPERT_FULL: 2, EXPERT_PARTIAL: 2, AUTOMATIC: 3}  # the automatic file adds a score


@dataclass(frozen=True)
class AlignedPair:
    """One line: a Wikipedia sentence and its Simple Wikipedia counterpart, detokenised."""

    file: str
    line: int
    source: str  # English Wikipedia
    target: str  # Simple English Wikipedia
    score: float | None  # the aligner's similarity (automatic file only)


def gzip_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a gzip-compressed UTF-8 file; a torn or undecodable file is a DataError."""
    require_file(path)
    n = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.endswith("\n"):
                    raise DataError(path, f"line {n} (the last)", "a final newline, as upstream has", "none")
                yield n, line.rstrip("\r\n")
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut-off stream an EOFError
        raise DataError(
            path,
            f"line {n + 1}",
            "an intact gzip file (restore the unmodified upstream file, see SOURCE.txt)",
            f"{type(e).__name__}: {e}",
        ) from e
    except UnicodeDecodeError as e:
        raise DataError(path, f"line {n + 1}", "UTF-8 text", "undecodable bytes") from e


def read_file(path: Path) -> list[AlignedPair]:
    """The pairs of one alignment file."""
    width = FIELDS[path.name]
    out = []
    for n, line in gzip_lines(path):
        f = line.split("\t")
        where = f"line {n}"
        if len(f) != width:
            what = "sentence TAB simple sentence" + (" TAB score" if width == 3 else "")
            raise DataError(path, where, f"{width} tab-separated fields ({what})", f"{len(f)} field(s)")
        source = detokenize(normalise(f[0], path, f"{where}, field 1 (Wikipedia sentence)"))
        target = detokenize(normalise(f[1], path, f"{where}, field 2 (Simple Wikipedia sentence)"))
        score = None
        if width == 3:
            try:
                score = float(f[2])
            except ValueError:
                raise DataError(path, f"{where}, field 3", "a score (a number)", repr(f[2])) from None
        out.append(AlignedPair(path.name, n, source, target, score))
    return out


def read(folder: Path, skips: SkipLog | None = None) -> dict[str, list[AlignedPair]]:
    """The pairs of the three files, by file name."""
    return {name: read_file(folder / name) for name in FIELDS}


def training_rows(records: dict[str, list[AlignedPair]], skips: SkipLog) -> Rows:
    """(Wikipedia sentence -> Simple Wikipedia sentence) pairs of the expert fully aligned file.

    The validation unit is the Wikipedia sentence (one occurs twice), named by its first line.
    """
    units: dict[str, int] = {}
    out = []
    for p in records[EXPERT_FULL]:
        if leakage.key(p.source) == leakage.key(p.target):
            skips.add("simplewiki_medical: simple sentence same as the Wikipedia one")
            continue
        unit = units.setdefault(leakage.key(p.source), p.line)
        out.append(row(layout.PAIRS, "simplewiki_medical", f"line {unit}", p.source, p.target))
    return {layout.PAIRS: out}


def manifest_info(records: dict[str, list[AlignedPair]]) -> dict[str, object]:
    """The manifest's counts: pairs per file."""
    return {f"simplewiki_medical_{name.split('.')[0]}": len(v) for name, v in records.items()}


SOURCE = Source(
    info=SourceInfo(
        folder="simplewiki_medical",
        row_sources=("simplewiki_medical",),
        name="Medical Wikipedia / Simple English Wikipedia aligned sentences (WWW 2019)",
        license="CC BY-SA 3.0",
        role="train+validation: pairs (Wikipedia sentence->Simple Wikipedia sentence, expert fully aligned)",
        url="https://github.com/myTomorrows-research/public (folder WWW2019)",
        commit="5b054a88746b7d4422732e2fd3ee6a77a8a53918",
        attribution="Van den Bercken, Sips and Lofi, 2019, Evaluating Neural Text Simplification in the "
        "Medical Domain (The Web Conference, WWW 2019); text from English and Simple English Wikipedia, "
        "CC BY-SA 3.0",
        bibtex="""@inproceedings{vandenbercken2019simplification,
  title = {Evaluating Neural Text Simplification in the Medical Domain},
  author = {Van den Bercken, Laurens and Sips, Robert-Jan and Lofi, Christoph},
  booktitle = {The World Wide Web Conference (WWW '19)},
  publisher = {ACM},
  year = {2019},
  url = {https://github.com/myTomorrows-research/public}
}""",
    ),
    files=tuple(FIELDS),
    # @ 5b054a88746b
    pins={
        AUTOMATIC: Pin("fca0798601e5d62e4ee00d1e2f90b84ff6adb464c2f50dca8ed67115c04cebd2", None),
        EXPERT_FULL: Pin("9d449da6b1306c339ea228c960845cea5f1b4fef5f5beaa7ec74ab6483380ea8", None),
        EXPERT_PARTIAL: Pin("8a7cd50c08eae233d8f3a7f52de205e85ac296cab9989896b8ac12975f14c768", None),
    },
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="sentences",
)
