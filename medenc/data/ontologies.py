"""Adapters for the two ontology sources: the Human Disease Ontology and HPO's layperson synonyms.

Like :mod:`medenc.data.sources`, each reads the unmodified upstream files and raises
:class:`~medenc.core.errors.DataError` naming the file and the line (TSV) or stanza (OBO) whenever the input
does not look like the upstream format. OBO is parsed with ``fastobo`` (a full OBO 1.4 parser that reports
syntax errors by line), never with regular expressions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medenc.core.errors import DataError
from medenc.data.sources import (
    SOURCE_FILES,
    SkipLog,
    _require_file,
    _torn_last_line,
    clean_or_none,
    normalise,
    source_dir,
)

DO_FOLDER = "disease_ontology"
HPO_FOLDER = "hpo_layperson"
# The DO subsets overlap; merged by DOID in this order (the first file naming a term gives its name).
DO_OBO_FILES = SOURCE_FILES[DO_FOLDER][:4]
DO_TSV = SOURCE_FILES[DO_FOLDER][4]
DO_TSV_HEADER = ("id", "label", "subClassOf")
HPO_TSV = SOURCE_FILES[HPO_FOLDER][0]
HPO_TSV_HEADER = ("?term", "?term_label", "?layperson")
HPO_IRI_PREFIX = "<http://purl.obolibrary.org/obo/HP_"


@dataclass
class Concept:
    """One ontology concept. ``synonyms``: DO EXACT synonyms, or HPO layperson phrasings; ``parents``: ids."""

    id: str  # "DOID:0050012" or "HP:0002648": the unit of the concepts test split
    name: str
    synonyms: list[str] = field(default_factory=list)
    definition: str | None = None
    parents: list[str] = field(default_factory=list)


def _add_unique(items: list[str], *new: str) -> None:
    """Append the ``new`` items not yet in ``items`` (order kept: splits and pairs must be stable)."""
    items.extend(n for n in dict.fromkeys(new) if n not in items)


# --- OBO ----------------------------------------------------------------------------------------------------
def _load_obo(path: Path) -> list:
    """The frames of an OBO file; a syntax error becomes a DataError naming the line."""
    import fastobo  # imported here: only this adapter needs it

    _require_file(path)
    try:
        return list(fastobo.load(str(path)))
    except SyntaxError as e:
        raise DataError(path, f"line {e.lineno}", "well-formed OBO 1.4", e.msg) from e
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(path, None, "a UTF-8 OBO 1.4 file", f"{type(e).__name__}: {e}") from e


def _term(frame: object, path: Path, where: str) -> tuple[Concept, bool]:
    """A [Term] frame as (concept, obsolete); a term without a ``name:`` is a DataError."""
    c = Concept(str(frame.id), "")  # type: ignore[attr-defined]
    obsolete = False
    for clause in frame:  # type: ignore[attr-defined]
        kind = type(clause).__name__
        if kind == "NameClause":
            c.name = normalise(clause.name, path, f"{where}, name")
        elif kind == "DefClause":
            c.definition = clean_or_none(clause.definition)
        elif kind == "SynonymClause" and str(clause.synonym.scope) == "EXACT":
            # RELATED / NARROW / BROAD synonyms are other concepts, not other names of this one.
            _add_unique(c.synonyms, normalise(clause.synonym.desc, path, f"{where}, synonym"))
        elif kind == "IsAClause":
            _add_unique(c.parents, str(clause.term))
        elif kind == "IsObsoleteClause":
            obsolete = obsolete or clause.raw_value() == "true"
    if not c.name and not obsolete:
        raise DataError(path, where, "a 'name:' line in every [Term] stanza", "none")
    return c, obsolete


def read_obo_file(path: Path, skips: SkipLog | None = None) -> list[Concept]:
    """The non-obsolete [Term] stanzas of one OBO file (obsolete ones counted in ``skips``)."""
    out = []
    for n, frame in enumerate(_load_obo(path), start=1):
        if type(frame).__name__ != "TermFrame":
            continue  # [Typedef] stanzas name relations, not diseases
        concept, obsolete = _term(frame, path, f"[Term] stanza #{n} (id: {frame.id})")
        if obsolete:
            if skips is not None:
                skips.add(f"disease_ontology: obsolete term ({path.name})")
            continue
        out.append(concept)
    return out


# --- quoted TSV (RDF literals) ------------------------------------------------------------------------------
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
    _require_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"byte {e.start}", "UTF-8 text", "undecodable bytes") from e
    lines = text.split("\n")
    if lines[-1]:  # the upstream file ends with a newline: a last line without one was cut off
        raise _torn_last_line(path, text, len(lines[-1].split("\t")), "a final newline, as upstream has")
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


# --- Human Disease Ontology ---------------------------------------------------------------------------------
def _humando_parents(path: Path, concepts: dict[str, Concept]) -> None:
    """Add HumanDO.tsv's diseases (every DO disease) and parents (by label) to ``concepts``, by DOID."""
    rows = read_quoted_tsv(path, DO_TSV_HEADER, (0, 1, 2))
    for n, (doid, label, _) in rows:
        if not doid.startswith("DOID:"):
            raise DataError(path, f"line {n}, column 1 (id)", "a DOID (DOID:<digits>)", repr(doid))
        concepts.setdefault(doid, Concept(doid, label))
    by_label: dict[str, list[str]] = defaultdict(list)  # a label can name two DOIDs: each is a parent
    for c in concepts.values():
        by_label[c.name.lower()].append(c.id)
    for _, (doid, _, parent) in rows:
        _add_unique(concepts[doid].parents, *by_label.get(parent.lower(), []))


def read_disease_ontology(root: Path, skips: SkipLog | None = None) -> list[Concept]:
    """Every DO disease: the OBO subsets merged by DOID (name, EXACT synonyms, definition, parents), plus
    the diseases only HumanDO.tsv lists (name and parents only), in a stable order."""
    folder = source_dir(root, DO_FOLDER)
    concepts: dict[str, Concept] = {}
    for name in DO_OBO_FILES:
        for c in read_obo_file(folder / name, skips):
            seen = concepts.setdefault(c.id, c)
            if seen is not c:  # the same term in two subsets: keep the first name, merge the rest
                _add_unique(seen.synonyms, *c.synonyms)
                _add_unique(seen.parents, *c.parents)
                seen.definition = seen.definition or c.definition
    _humando_parents(folder / DO_TSV, concepts)
    return list(concepts.values())


# --- HPO layperson synonyms ---------------------------------------------------------------------------------
def _hpo_id(iri: str, path: Path, where: str) -> str:
    """``<http://purl.obolibrary.org/obo/HP_0002648>`` -> ``HP:0002648``."""
    digits = iri.removeprefix(HPO_IRI_PREFIX).removesuffix(">")
    if not (iri.startswith(HPO_IRI_PREFIX) and iri.endswith(">") and digits.isdigit()):
        raise DataError(path, where, f"an HPO term IRI {HPO_IRI_PREFIX}<digits>>", repr(iri))
    return f"HP:{digits}"


def read_hpo_layperson(root: Path) -> list[Concept]:
    """HPO terms with their layperson phrasings (``synonyms``), in first-seen order."""
    path = source_dir(root, HPO_FOLDER) / HPO_TSV
    concepts: dict[str, Concept] = {}
    for n, (iri, label, lay) in read_quoted_tsv(path, HPO_TSV_HEADER, (1, 2)):
        hp = _hpo_id(iri, path, f"line {n}, column 1 (?term)")
        c = concepts.setdefault(hp, Concept(hp, label))
        if c.name != label:
            raise DataError(path, f"line {n}, column 2", f"the label of {hp} given before: {c.name!r}", label)
        _add_unique(c.synonyms, lay)
    return list(concepts.values())
