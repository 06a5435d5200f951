"""Cochrane plain-language summaries: a review abstract's results paragraph beside the summary written for lay
readers (Devaraj et al., 2021; training pairs).

``data-1024/{val,test}.{source,target,doi}`` as the paper's repository publishes them (its train files are not
in the mirror): one review per line, the technical paragraph in ``.source``, the plain-language summary in
``.target``, the review's DOI in ``.doi``, the three files of a split line for line. Their val / test split is
theirs, not ours: every review trains (validation is drawn by review, :mod:`medenc.data.filters`).

Each review is one phase-2 pair, lay summary -> results paragraph (row source ``cochrane_pls``): the
passage-level form of the project's lay -> clinical promise, a lay reader's words meeting a biomedical
abstract. Its rows have their own validation draw (``validation_group="passages"``), so the older sources'
validation rows stay as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, stream_lines
from medenc.data.source import Pin, Rows, Source, SourceInfo, row

SPLITS = ("val", "test")
PARTS = ("source", "target", "doi")
# A Cochrane review (CD) or methodology review (MR), with its version: the review id is the part before .pub
_DOI = re.compile(r"^10\.1002/14651858\.((?:CD|MR)\d{6})(\.pub\d+)?$")


@dataclass(frozen=True)
class Review:
    """One review's line: where it is, its DOI, its results paragraph and its plain-language summary."""

    split: str  # upstream's file set ("val" or "test")
    line: int
    doi: str
    results: str
    summary: str

    @property
    def review_id(self) -> str:
        """The review without its version ("CD000370"): the unit of the validation split."""
        m = _DOI.match(self.doi)
        assert m is not None  # checked when read
        return m.group(1)


def read_split(folder: Path, split: str) -> list[Review]:
    """The reviews of one split; files that disagree in length or a DOI of another form are DataErrors."""
    paths = {part: folder / f"{split}.{part}" for part in PARTS}
    lines = {part: [text for _, text in stream_lines(path)] for part, path in paths.items()}
    sizes = {part: len(v) for part, v in lines.items()}
    if len(set(sizes.values())) != 1:
        expected = f"{split}.source, {split}.target and {split}.doi line for line (one review per line)"
        raise DataError(folder, None, expected, ", ".join(f"{p}: {n} lines" for p, n in sizes.items()))
    out = []
    for n, (results, summary, doi) in enumerate(zip(*(lines[p] for p in PARTS), strict=True), start=1):
        if not _DOI.match(doi.strip()):
            expected = "a Cochrane DOI (10.1002/14651858.CD000370, optionally .pubN)"
            raise DataError(paths["doi"], f"line {n}", expected, repr(doi))
        out.append(
            Review(
                split,
                n,
                doi.strip(),
                normalise(results, paths["source"], f"line {n}"),
                normalise(summary, paths["target"], f"line {n}"),
            )
        )
    return out


def read(folder: Path, skips: SkipLog | None = None) -> list[Review]:
    """Every review of both splits, val first, in file order; a DOI twice is a DataError."""
    reviews = [r for split in SPLITS for r in read_split(folder, split)]
    seen: dict[str, Review] = {}
    for r in reviews:
        if r.review_id in seen:
            first = seen[r.review_id]
            raise DataError(
                folder / f"{r.split}.doi",
                f"line {r.line}",
                "each review once across val and test",
                f"{r.doi} again (first: {first.split}.doi line {first.line})",
            )
        seen[r.review_id] = r
    return reviews


def training_rows(reviews: list[Review], skips: SkipLog) -> Rows:
    """Lay summary -> results paragraph pairs, one per review."""
    return {
        layout.PAIRS: [row(layout.PAIRS, "cochrane_pls", r.review_id, r.summary, r.results) for r in reviews]
    }


def manifest_info(reviews: list[Review]) -> dict[str, object]:
    """The manifest's Cochrane counts."""
    return {"cochrane_pls_reviews": len(reviews)}


SOURCE = Source(
    info=SourceInfo(
        folder="cochrane_pls",
        row_sources=("cochrane_pls",),
        name="Cochrane plain-language summaries (Devaraj et al.)",
        license="CC BY 4.0",
        role="train+validation: pairs (plain-language summary->results paragraph of a Cochrane review)",
        url="https://github.com/AshOlogn/Paragraph-level-Simplification-of-Medical-Texts",
        commit="edf6504ea28b2458ec6b4c172482ad15387aeeef",
        attribution=(
            "Devaraj et al., 2021, Paragraph-level Simplification of Medical Texts (Cochrane Database of "
            "Systematic Reviews abstracts and plain-language summaries)"
        ),
        bibtex="""@inproceedings{devaraj2021paragraph,
  title = {Paragraph-level Simplification of Medical Texts},
  author = {Devaraj, Ashwin and Marshall, Iain J. and Wallace, Byron C. and Li, Junyi Jessy},
  booktitle = {Proceedings of NAACL-HLT 2021},
  pages = {4972--4984},
  year = {2021}
}""",
    ),
    files=(*(f"{s}.{p}" for s in SPLITS for p in PARTS), "LICENSE.md"),
    # @ edf6504ea28b (folder data/data-1024/)
    pins={
        "val.source": Pin("101957b3b773ff0ff7e6b62a1b23a345d2dd98304874c0a4021dd48edb09447d", 411),
        "val.target": Pin("4a2ebbe3ceb47738a1458bc229d209da1c8ebd7e7cbc17b963b94ce343bcc12b", 411),
        "val.doi": Pin("8a4820c2f6e2c040d6b0edf4fc1c26529ad2718c36250b25f95cd4e7fa3a06b8", 411),
        "test.source": Pin("953644e1a14a484c50fc3697433d772155ce3f117843d2005ee35e94ee39814f", 480),
        "test.target": Pin("d5a2dbac13f2a471e374b1689178d8d1259e98bfc52015559162f9f4656ac70b", 480),
        "test.doi": Pin("2ac652dad21bf6f69c64eda7c09a0ad6b28cf36797e7a5e8f4b8cdcd1c626150", 480),
        "LICENSE.md": Pin("7e7170e3cebf88a9f60c7b8421418323c09304da1af4d5e90f4da1dc1c8a2661", None),
    },
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="passages",
)
