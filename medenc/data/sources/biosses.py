"""BIOSSES: 100 biomedical sentence pairs with five annotators' scores (test only)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, normalise, require_file
from medenc.data.source import Pin, ScoredPair, Source, SourceInfo, TestYield, scored_rows

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def read_docx_table(path: Path) -> list[list[str]]:
    """The first table of a .docx (a zip holding ``word/document.xml``) as rows of cell texts."""
    require_file(path)
    try:
        with zipfile.ZipFile(path) as z:
            xml = z.read("word/document.xml")
    except zipfile.BadZipFile as e:
        raise DataError(path, None, "a Word .docx file (a zip archive)", "not a zip file") from e
    except KeyError as e:
        raise DataError(
            path, "word/document.xml", "a Word .docx holding word/document.xml", "no such member"
        ) from e
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DataError(path, f"word/document.xml {e.position}", "well-formed XML", str(e)) from e
    table = root.find(f".//{_W}tbl")
    if table is None:
        raise DataError(path, "word/document.xml", "a table (w:tbl)", "no table")
    rows = []
    for tr in table.iter(f"{_W}tr"):
        cells = []
        for tc in tr.findall(f"{_W}tc"):
            paras = ["".join(t.text or "" for t in p.iter(f"{_W}t")) for p in tc.iter(f"{_W}p")]
            cells.append(" ".join(paras))
        rows.append(cells)
    return rows


def _pairs(path: Path) -> dict[int, tuple[str, str]]:
    """Pair id -> (sentence 1, sentence 2) from Annotation-Pairs.docx."""
    pairs: dict[int, tuple[str, str]] = {}
    for n, cells in enumerate(read_docx_table(path)[1:], start=2):  # row 1 is the header
        where = f"table row {n}"
        if len(cells) < 3:
            raise DataError(path, where, "3 cells (pair id, sentence 1, sentence 2)", f"{len(cells)} cell(s)")
        try:
            pid = int(cells[0].strip())
        except ValueError as e:
            raise DataError(path, f"{where}, cell 1", "an integer pair id", repr(cells[0])) from e
        pairs[pid] = (
            normalise(cells[1], path, f"{where}, cell 2 (sentence 1)"),
            normalise(cells[2], path, f"{where}, cell 3 (sentence 2)"),
        )
    return pairs


def _scores(path: Path) -> dict[int, float]:
    """Pair id -> mean of the five annotators' 0-4 scores, from Annotator-Scores.docx."""
    scores: dict[int, float] = {}
    for n, cells in enumerate(read_docx_table(path)[1:], start=2):
        where = f"table row {n}"
        if len(cells) < 6:
            raise DataError(path, where, "6 cells (sentence no, annotators A-E)", f"{len(cells)} cell(s)")
        try:
            pid = int(cells[0].strip())
        except ValueError as e:
            raise DataError(path, f"{where}, cell 1", "an integer sentence no", repr(cells[0])) from e
        vals = []
        for c, cell in enumerate(cells[1:6], start=2):
            try:
                v = float(cell.strip())
            except ValueError as e:
                raise DataError(path, f"{where}, cell {c}", "a numeric score 0-4", repr(cell)) from e
            if not 0.0 <= v <= 4.0:
                raise DataError(path, f"{where}, cell {c}", "a score in [0, 4]", repr(cell))
            vals.append(v)
        scores[pid] = sum(vals) / len(vals)
    return scores


def read(folder: Path, skips: SkipLog | None = None) -> list[ScoredPair]:
    """The 100 BIOSSES pairs; gold = mean of the five annotators' 0-4 scores, divided by 4."""
    pairs_path, scores_path = folder / "Annotation-Pairs.docx", folder / "Annotator-Scores.docx"
    pairs, scores = _pairs(pairs_path), _scores(scores_path)
    if set(pairs) != set(scores):
        diff = sorted(set(pairs) ^ set(scores))[:10]
        raise DataError(
            scores_path, None, f"the same pair ids as {pairs_path.name}", f"mismatched ids {diff}"
        )
    return [ScoredPair(f"biosses:{pid}", *pairs[pid], scores[pid] / 4.0) for pid in sorted(pairs)]


def test_sets(pairs: list[ScoredPair]) -> TestYield:
    """Every pair, as the ``biosses`` test set."""
    return TestYield(sets={("test", "biosses"): scored_rows(pairs)})


SOURCE = Source(
    info=SourceInfo(
        folder="biosses",
        name="BIOSSES",
        license="GPL-3.0 (repository license)",
        role="test only: biosses",
        url="https://github.com/gizemsogancioglu/biosses",
        commit="381b24030e06b77f9c50ee245e86c65cd700407a",
        attribution="Soğancıoğlu, Öztürk and Özgür, 2017, BIOSSES: a semantic sentence similarity "
        "estimation system for the biomedical domain",
        hub_dataset="bigbio/biosses",
        bibtex="""@article{sogancioglu2017biosses,
  title = {{BIOSSES}: a semantic sentence similarity estimation system for the biomedical domain},
  author = {So{\\u{g}}anc{\\i}o{\\u{g}}lu, Gizem and {\\"O}zt{\\"u}rk, Hakime and {\\"O}zg{\\"u}r, Arzucan},
  journal = {Bioinformatics},
  volume = {33},
  number = {14},
  pages = {i49--i58},
  year = {2017}
}""",
    ),
    files=("Annotation-Pairs.docx", "Annotator-Scores.docx"),
    # @ 381b24030e06
    pins={
        "Annotation-Pairs.docx": Pin(
            "d11deee66b8d9f2f43b4e626271123d052fbdb991c65d6204bb885516d72ba05", None
        ),
        "Annotator-Scores.docx": Pin(
            "d13bd6a30f0f6a2bddf1749588b1934b1dd84d25b46179526d154be832a9846a", None
        ),
    },
    read=read,
    test_sets=test_sets,
)
