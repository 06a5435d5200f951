"""MeQSum: long consumer health questions and their one-line expert summaries (training pairs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, require_file
from medenc.data.source import Pin, Rows, Source, SourceInfo, row

XLSX = "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"


@dataclass(frozen=True)
class MeqsumRow:
    """A MeQSum row: long consumer health question and its one-line expert summary."""

    file: str
    chq: str
    summary: str


def read_file(path: Path) -> list[MeqsumRow]:
    """One-sheet .xlsx with header File, CHQ, Summary (the sheet declares ~1000 empty extra columns)."""
    import openpyxl  # imported here: only this adapter needs it

    require_file(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several unrelated types for a non-xlsx file
        raise DataError(path, None, "an Excel .xlsx workbook", f"{type(e).__name__}: {e}") from e
    try:
        ws = wb[wb.sheetnames[0]]
        rows = ws.iter_rows(values_only=True)
        header = tuple(str(c).strip() if c is not None else "" for c in next(rows, ())[:3])
        if header != ("File", "CHQ", "Summary"):
            raise DataError(path, f"sheet {ws.title!r}, row 1", "the header File, CHQ, Summary", repr(header))
        out = []
        for n, cells_row in enumerate(rows, start=2):
            cells = (*tuple(cells_row), None, None, None)[:3]
            if all(c is None for c in cells):
                continue  # trailing blank rows are spreadsheet padding, not data
            where = f"sheet {ws.title!r}, row {n}"
            f = normalise(str(cells[0] or ""), path, f"{where}, column A (File)")
            chq = normalise(str(cells[1] or ""), path, f"{where}, column B (CHQ)")
            summ = normalise(str(cells[2] or ""), path, f"{where}, column C (Summary)")
            out.append(MeqsumRow(f, chq, summ))
        return out
    finally:
        wb.close()


def read(folder: Path, skips: SkipLog | None = None) -> list[MeqsumRow]:
    """The 1000 MeQSum (CHQ, Summary) rows."""
    return read_file(folder / XLSX)


def training_rows(rows: list[MeqsumRow], skips: SkipLog) -> Rows:
    """CHQ -> summary pairs."""
    return {layout.PAIRS: [row(layout.PAIRS, "meqsum", m.file, m.chq, m.summary) for m in rows]}


SOURCE = Source(
    info=SourceInfo(
        folder="meqsum",
        row_sources=("meqsum",),
        name="MeQSum",
        license="CC BY 4.0",
        role="train+validation: pairs (CHQ->summary)",
        url="https://github.com/abachaa/MeQSum",
        commit="51e36cf65c12602333b6fdc3ae8ecf10430529f7",
        attribution="Ben Abacha and Demner-Fushman, 2019, On the summarization of consumer health questions",
        bibtex="""@inproceedings{benabacha2019summarization,
  title = {On the Summarization of Consumer Health Questions},
  author = {Ben Abacha, Asma and Demner-Fushman, Dina},
  booktitle = {Proceedings of the 57th Annual Meeting of the Association for Computational Linguistics},
  pages = {2228--2234},
  year = {2019}
}""",
    ),
    files=(XLSX,),
    # @ 51e36cf65c12
    pins={XLSX: Pin("abedd939d5014306ca576522416bf69103e85dc8fcf1668a4099e8b84a39eeea", None)},
    read=read,
    training_rows=training_rows,
)
