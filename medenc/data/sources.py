"""One small adapter per raw source: parse the unmodified upstream files into plain python records.

Each adapter reads files exactly as they are shipped (see ``../shared/data/README.md``) and raises
:class:`~medenc.core.errors.DataError` naming the file, the row or element, and what was expected whenever the
input does not look like the upstream format. Nothing is silently skipped except the few upstream quirks
documented below (and counted in the manifest by :mod:`medenc.data.prepare`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core.errors import DataError
from medenc.core.progress import progress

# The folder name of every source under the raw data root, and the files it must contain (for messages).
SOURCE_FILES: dict[str, tuple[str, ...]] = {
    "stsbenchmark": ("sts-train.csv", "sts-dev.csv", "sts-test.csv"),
    "biosses": ("Annotation-Pairs.docx", "Annotator-Scores.docx"),
    "medquad": ("1_CancerGov_QA/ ... 12_MPlusHerbsSupplements_QA/ (XML documents)",),
    "pubmedqa": ("ori_pqal.json", "test_ground_truth.json"),
    "rqe_amia2016": ("RQE_Train_8588_AMIA2016.xml", "RQE_Test_302_pairs_AMIA2016.xml"),
    "meqsum": ("MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx",),
    "medical_abbreviations": ("CSVs/*.csv",),
    # Read by medenc.data.ontologies.
    "disease_ontology": (
        "NCIthesaurus.obo",
        "DO_rare_slim.obo",
        "DO_cancer_slim.obo",
        "DO_infectious_disease_slim.obo",
        "HumanDO.tsv",
    ),
    "hpo_layperson": ("layperson-synonyms.tsv",),
}

# Known defects of the upstream files, skipped explicitly (and counted) instead of failing the whole build.
# Any *other* empty text is a DataError. RQE train pair 5860 ships with an empty <faq>.
KNOWN_EMPTY: frozenset[tuple[str, str]] = frozenset({("RQE_Train_8588_AMIA2016.xml", "pair pid=5860")})

_WS = re.compile(r"\s+")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


# --- records ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoredPair:
    """A graded sentence pair; ``score`` is normalised to [0, 1]."""

    id: str
    sentence1: str
    sentence2: str
    score: float


@dataclass(frozen=True)
class MedquadQA:
    """One MedQuAD QAPair; ``answer`` is None where upstream removed or never had the answer."""

    qid: str
    question: str
    answer: str | None


@dataclass(frozen=True)
class MedquadDoc:
    """One MedQuAD XML document. ``doc_id`` is ``<subset folder>/<file stem>`` (upstream ids repeat across
    folders, so the folder is part of the stable id)."""

    doc_id: str
    subset: int
    focus: str | None
    synonyms: tuple[str, ...]
    qa: tuple[MedquadQA, ...]
    variant_schema: bool = False  # four NINDS files use <doc>/<qaPairs>/<pair> instead of <Document>/...


@dataclass(frozen=True)
class RqePair:
    """An RQE pair: does the consumer health question (chq) entail the FAQ? ``label`` is 1 for true."""

    pid: str
    chq: str
    faq: str
    label: int


@dataclass(frozen=True)
class PubmedqaItem:
    """A PubMedQA PQA-L instance: the question and its abstract (contexts joined by spaces)."""

    pmid: str
    question: str
    abstract: str


@dataclass(frozen=True)
class MeqsumRow:
    """A MeQSum row: long consumer health question and its one-line expert summary."""

    file: str
    chq: str
    summary: str


@dataclass(frozen=True)
class AbbreviationRow:
    """An abbreviation and one of its meanings (``id`` = ``<csv name>:<line>``)."""

    id: str
    abbreviation: str
    meaning: str


@dataclass
class SkipLog:
    """Upstream quirks that are skipped on purpose, by reason, so the manifest can report them."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` skipped items for ``reason``."""
        self.counts[reason] = self.counts.get(reason, 0) + n


# --- helpers ------------------------------------------------------------------------------------------------
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


def source_dir(root: Path, name: str) -> Path:
    """``root/name`` if it is a folder, else a DataError saying which upstream files to put there."""
    path = root / name
    if not path.is_dir():
        raise DataError(
            path,
            None,
            f"the source folder '{name}/' under the raw data root holding {', '.join(SOURCE_FILES[name])} "
            f"(the unmodified upstream files, see {root / 'README.md'}; or set DATA_DIR to your copy)",
            "no such folder",
        )
    return path


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError(path, None, "this upstream file (unmodified, see the data README)", "no such file")
    return path


def _torn_last_line(path: Path, text: str, fields: int, expected: str) -> DataError:
    """The error for a file whose last line is cut off (a truncated download or copy), naming that line."""
    line = text.count("\n") + 1
    return DataError(
        path,
        f"line {line} (the last)",
        expected,
        f"{fields} field(s) and no final newline: the file looks cut off mid-line; restore the unmodified "
        "upstream file (its folder's SOURCE.txt names the repository, commit and path)",
    )


def _parse_xml(path: Path) -> ET.Element:
    _require_file(path)
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        raise DataError(path, f"line {line}, column {col}", "well-formed XML", str(e)) from e


# --- STS Benchmark ------------------------------------------------------------------------------------------
def read_stsb_file(path: Path) -> list[ScoredPair]:
    """Parse one ``sts-*.csv``: tab separated, score 0-5 in column 5, sentences in 6 and 7 (1-based).

    Split on tabs only: the sentences contain quotes that a quote-aware CSV reader would merge across rows.
    Some rows carry two extra trailing source columns, which are ignored.
    """
    _require_file(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"byte {e.start}", "UTF-8 text", "undecodable bytes") from e
    lines = raw.split("\n")  # not splitlines(): it would also split on \x0b, \u2028 etc. inside sentences
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:  # every upstream sts-*.csv ends with a newline: a last line without one was cut off
        fields = len(lines[-1].split("\t"))
        raise _torn_last_line(path, raw, fields, "a final newline, as every upstream sts-*.csv has")
    out: list[ScoredPair] = []
    for n, line in enumerate(lines, start=1):
        cols = line.rstrip("\r").split("\t")
        where = f"line {n}"
        if len(cols) < 7:
            raise DataError(
                path,
                where,
                "at least 7 tab-separated fields (genre, file, year, id, score, sentence1, sentence2)",
                f"{len(cols)} field(s)",
            )
        try:
            score = float(cols[4])
        except ValueError as e:
            raise DataError(path, f"{where}, column 5", "a numeric score 0-5", repr(cols[4])) from e
        if not 0.0 <= score <= 5.0:
            raise DataError(path, f"{where}, column 5", "a score in [0, 5]", repr(cols[4]))
        s1 = normalise(cols[5], path, f"{where}, column 6 (sentence1)")
        s2 = normalise(cols[6], path, f"{where}, column 7 (sentence2)")
        out.append(ScoredPair(f"stsb:{path.stem}:{n}", s1, s2, score / 5.0))
    return out


def read_stsb(root: Path) -> dict[str, list[ScoredPair]]:
    """STS Benchmark train/dev/test, keyed ``train``, ``dev``, ``test``."""
    folder = source_dir(root, "stsbenchmark")
    return {s: read_stsb_file(folder / f"sts-{s}.csv") for s in ("train", "dev", "test")}


# --- BIOSSES ------------------------------------------------------------------------------------------------
def read_docx_table(path: Path) -> list[list[str]]:
    """The first table of a .docx (a zip holding ``word/document.xml``) as rows of cell texts."""
    _require_file(path)
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


def read_biosses(root: Path) -> list[ScoredPair]:
    """The 100 BIOSSES pairs; gold = mean of the five annotators' 0-4 scores, divided by 4."""
    folder = source_dir(root, "biosses")
    pairs_path, scores_path = folder / "Annotation-Pairs.docx", folder / "Annotator-Scores.docx"
    pairs: dict[int, tuple[str, str]] = {}
    for n, row in enumerate(read_docx_table(pairs_path)[1:], start=2):  # row 1 is the header
        where = f"table row {n}"
        if len(row) < 3:
            raise DataError(
                pairs_path, where, "3 cells (pair id, sentence 1, sentence 2)", f"{len(row)} cell(s)"
            )
        try:
            pid = int(row[0].strip())
        except ValueError as e:
            raise DataError(pairs_path, f"{where}, cell 1", "an integer pair id", repr(row[0])) from e
        pairs[pid] = (
            normalise(row[1], pairs_path, f"{where}, cell 2 (sentence 1)"),
            normalise(row[2], pairs_path, f"{where}, cell 3 (sentence 2)"),
        )
    scores: dict[int, float] = {}
    for n, row in enumerate(read_docx_table(scores_path)[1:], start=2):
        where = f"table row {n}"
        if len(row) < 6:
            raise DataError(
                scores_path, where, "6 cells (sentence no, annotators A-E)", f"{len(row)} cell(s)"
            )
        try:
            pid = int(row[0].strip())
        except ValueError as e:
            raise DataError(scores_path, f"{where}, cell 1", "an integer sentence no", repr(row[0])) from e
        vals = []
        for c, cell in enumerate(row[1:6], start=2):
            try:
                v = float(cell.strip())
            except ValueError as e:
                raise DataError(scores_path, f"{where}, cell {c}", "a numeric score 0-4", repr(cell)) from e
            if not 0.0 <= v <= 4.0:
                raise DataError(scores_path, f"{where}, cell {c}", "a score in [0, 4]", repr(cell))
            vals.append(v)
        scores[pid] = sum(vals) / len(vals)
    if set(pairs) != set(scores):
        diff = sorted(set(pairs) ^ set(scores))[:10]
        raise DataError(
            scores_path, None, f"the same pair ids as {pairs_path.name}", f"mismatched ids {diff}"
        )
    return [ScoredPair(f"biosses:{pid}", *pairs[pid], scores[pid] / 4.0) for pid in sorted(pairs)]


# --- MedQuAD ------------------------------------------------------------------------------------------------
def read_medquad_file(path: Path, subset: int) -> MedquadDoc:
    """Parse one MedQuAD XML document (both the common and the four-file NINDS variant schema).

    An empty <Answer> is not an error: subsets 10-12 had their answers removed for copyright and five GARD
    documents ship an empty one; such a QAPair is simply not a (question, answer) pair. An empty <Focus>
    (three CDC documents) means no synonym pairs.
    """
    root = _parse_xml(path)
    doc_id = f"{path.parent.name}/{path.stem}"
    if root.tag in ("Document", "DiseaseFile"):  # one CDC file uses <DiseaseFile>, otherwise identical
        variant, focus_tag, pair_path, q_tag, a_tag = False, "Focus", "QAPairs/QAPair", "Question", "Answer"
    elif root.tag == "doc":
        variant, focus_tag, pair_path, q_tag, a_tag = (
            True,
            "doctitle-focus",
            "qaPairs/pair",
            "question",
            "answer",
        )
    else:
        raise DataError(
            path, f"root element <{root.tag}>", "a <Document> (or <doc>, <DiseaseFile>) root element"
        )
    focus = clean_or_none(root.findtext(focus_tag))
    synonyms = []
    for i, s in enumerate(root.iter("Synonym"), start=1):
        synonyms.append(normalise(s.text, path, f"<Synonym> #{i}"))
    qa = []
    for i, p in enumerate(root.findall(pair_path), start=1):
        q = p.find(q_tag)
        where = f"<{p.tag} pid={p.get('pid')!r}> (#{i})"
        if q is None:
            raise DataError(path, where, f"a <{q_tag}> element")
        qid = q.get("qid") or f"{doc_id}-{i}"
        qa.append(
            MedquadQA(qid, normalise(q.text, path, f"{where} <{q_tag}>"), clean_or_none(p.findtext(a_tag)))
        )
    return MedquadDoc(doc_id, subset, focus, tuple(synonyms), tuple(qa), variant)


def read_medquad(root: Path) -> list[MedquadDoc]:
    """All MedQuAD documents of the 12 subset folders, in a stable (folder number, file name) order."""
    folder = source_dir(root, "medquad")
    subsets = []
    for d in folder.iterdir():
        m = re.match(r"(\d+)_", d.name)
        if d.is_dir() and m:
            subsets.append((int(m.group(1)), d))
    found = sorted(n for n, _ in subsets)
    if found != list(range(1, 13)):
        raise DataError(
            folder, None, "12 subset folders 1_CancerGov_QA ... 12_MPlusHerbsSupplements_QA", str(found)
        )
    files = [(n, f) for n, d in sorted(subsets) for f in sorted(d.glob("*.xml"))]
    return [read_medquad_file(f, n) for n, f in progress(files, desc="reading MedQuAD", unit="files")]


# --- PubMedQA -----------------------------------------------------------------------------------------------
def _read_json(path: Path) -> object:
    _require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else None
        raise DataError(path, where, "valid UTF-8 JSON", str(e)) from e


def read_pubmedqa(root: Path) -> tuple[dict[str, PubmedqaItem], list[str]]:
    """PQA-L instances keyed by PMID, and the 500 official test PMIDs (in file order)."""
    folder = source_dir(root, "pubmedqa")
    path = folder / "ori_pqal.json"
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, "a JSON object keyed by PMID", type(data).__name__)
    items = {}
    for pmid, v in data.items():
        where = f"PMID {pmid}"
        if not isinstance(v, dict) or not isinstance(v.get("CONTEXTS"), list) or not v["CONTEXTS"]:
            raise DataError(path, where, "an object with QUESTION and a non-empty CONTEXTS list")
        question = normalise(v.get("QUESTION"), path, f"{where}, QUESTION")
        ctx = [normalise(c, path, f"{where}, CONTEXTS[{i}]") for i, c in enumerate(v["CONTEXTS"])]
        items[str(pmid)] = PubmedqaItem(str(pmid), question, " ".join(ctx))
    tpath = folder / "test_ground_truth.json"
    truth = _read_json(tpath)
    if not isinstance(truth, dict):
        raise DataError(tpath, None, "a JSON object PMID -> label", type(truth).__name__)
    test_ids = [str(k) for k in truth]
    missing = [k for k in test_ids if k not in items]
    if missing:
        raise DataError(
            tpath, f"PMID {missing[0]}", f"a PMID present in {path.name}", f"{len(missing)} missing"
        )
    return items, test_ids


# --- RQE ----------------------------------------------------------------------------------------------------
def read_rqe_file(path: Path, skips: SkipLog | None = None) -> list[RqePair]:
    """Parse ``<pair pid value="true|false"><chq/><faq/></pair>`` elements."""
    root = _parse_xml(path)
    out = []
    for i, p in enumerate(root.findall("pair"), start=1):
        where = f"pair pid={p.get('pid')}"
        value = p.get("value")
        if value not in ("true", "false"):
            raise DataError(path, f"{where} (#{i})", 'value="true" or value="false"', repr(value))
        chq, faq = clean_or_none(p.findtext("chq")), clean_or_none(p.findtext("faq"))
        if (chq is None or faq is None) and (path.name, where) in KNOWN_EMPTY:
            if skips is not None:
                skips.add(f"rqe: known empty text upstream ({path.name}, {where})")
            continue
        chq = normalise(chq, path, f"{where} (#{i}) <chq>")
        faq = normalise(faq, path, f"{where} (#{i}) <faq>")
        out.append(RqePair(str(p.get("pid")), chq, faq, int(value == "true")))
    return out


def read_rqe(root: Path, skips: SkipLog | None = None) -> dict[str, list[RqePair]]:
    """RQE train (8588 pairs) and test (302 pairs)."""
    folder = source_dir(root, "rqe_amia2016")
    return {
        "train": read_rqe_file(folder / "RQE_Train_8588_AMIA2016.xml", skips),
        "test": read_rqe_file(folder / "RQE_Test_302_pairs_AMIA2016.xml", skips),
    }


# --- MeQSum -------------------------------------------------------------------------------------------------
def read_meqsum_file(path: Path) -> list[MeqsumRow]:
    """One-sheet .xlsx with header File, CHQ, Summary (the sheet declares ~1000 empty extra columns)."""
    import openpyxl  # imported here: only this adapter needs it

    _require_file(path)
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
        for n, row in enumerate(rows, start=2):
            cells = (*tuple(row), None, None, None)[:3]
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


def read_meqsum(root: Path) -> list[MeqsumRow]:
    """The 1000 MeQSum (CHQ, Summary) rows."""
    return read_meqsum_file(source_dir(root, "meqsum") / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx")


# --- medical abbreviations ----------------------------------------------------------------------------------
ABBREV_HEADER = ("Abbreviation/Shorthand", "Meaning", "More Info")


def read_abbreviations_file(path: Path) -> list[AbbreviationRow]:
    """One CSV (UTF-8, CRLF, quoted fields) with header Abbreviation/Shorthand, Meaning, More Info."""
    _require_file(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: tolerate a BOM if one appears
            text = fh.read()
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except UnicodeDecodeError as e:
        raise DataError(path, f"byte {e.start}", "UTF-8 text", "undecodable bytes") from e
    except csv.Error as e:
        raise DataError(path, None, "a well-formed CSV", str(e)) from e
    if not rows or tuple(c.strip() for c in rows[0][:3]) != ABBREV_HEADER:
        raise DataError(
            path, "line 1", f"the header {', '.join(ABBREV_HEADER)}", repr(rows[0] if rows else None)
        )
    # The upstream CSVs end without a newline, so only a short last row shows that the file was cut off.
    if not text.endswith(("\n", "\r")) and len(rows[-1]) != len(ABBREV_HEADER):
        raise _torn_last_line(path, text, len(rows[-1]), f"{len(ABBREV_HEADER)} fields, as in the header")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line carries no row
        if len(row) < 2:
            raise DataError(
                path, f"row {n}", "at least 2 fields (abbreviation, meaning)", f"{len(row)} field(s)"
            )
        abbr = normalise(row[0], path, f"row {n}, column 1 (abbreviation)")
        meaning = normalise(row[1], path, f"row {n}, column 2 (meaning)")
        out.append(AbbreviationRow(f"{path.name}:{n}", abbr, meaning))
    return out


def read_abbreviations(root: Path) -> list[AbbreviationRow]:
    """All rows of the 15 CSVs, in file-name order."""
    folder = source_dir(root, "medical_abbreviations") / "CSVs"
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(
            folder, None, "the upstream CSVs (e.g. 'B, medical abbreviations.csv')", "no .csv files"
        )
    return [r for f in files for r in read_abbreviations_file(f)]


def read_source_txt(root: Path, name: str) -> dict[str, str]:
    """The ``key: value`` lines of a source's SOURCE.txt (source, commit, commit_date, license)."""
    path = source_dir(root, name) / "SOURCE.txt"
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^([a-z_]+):\s*(.*)$", line)
            if m and m.group(1) in ("source", "commit", "commit_date", "license"):
                out[m.group(1)] = m.group(2).strip()
    return out
