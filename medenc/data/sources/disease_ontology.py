"""The Human Disease Ontology: disease names, EXACT synonyms, definitions and parents.

OBO is parsed with ``fastobo`` (a full OBO 1.4 parser that reports syntax errors by line), never with regular
expressions. Diseases held out by DOID (:func:`medenc.data.source.concept_held`) join the concepts test with
every name; the others give (synonym -> name), (name -> definition) pairs and sibling-disease triplets.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, add_unique, clean_or_none, normalise, read_quoted_tsv, read_utf8
from medenc.data.source import Concept, Pin, Rows, Source, SourceInfo, TestYield, bucket, concept_held, row

# The DO subsets overlap; merged by DOID in this order (the first file naming a term gives its name).
DO_OBO_FILES = (
    "NCIthesaurus.obo",
    "DO_rare_slim.obo",
    "DO_cancer_slim.obo",
    "DO_infectious_disease_slim.obo",
)
DO_TSV = "HumanDO.tsv"
DO_TSV_HEADER = ("id", "label", "subClassOf")


def _load_obo(path: Path) -> list:
    """The frames of an OBO file; a syntax error becomes a DataError naming the line."""
    import fastobo  # imported here: only this adapter needs it

    read_utf8(path)  # fastobo's own error for bad UTF-8 names neither the file nor the place
    try:
        return list(fastobo.load(str(path)))
    except SyntaxError as e:
        raise DataError(path, f"line {e.lineno}", "well-formed OBO 1.4", e.msg) from e
    except (OSError, ValueError) as e:
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
            add_unique(c.synonyms, normalise(clause.synonym.desc, path, f"{where}, synonym"))
        elif kind == "IsAClause":
            add_unique(c.parents, str(clause.term))
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
        add_unique(concepts[doid].parents, *by_label.get(parent.lower(), []))


def read(folder: Path, skips: SkipLog | None = None) -> list[Concept]:
    """Every DO disease: the OBO subsets merged by DOID (name, EXACT synonyms, definition, parents), plus
    the diseases only HumanDO.tsv lists (name and parents only), in a stable order."""
    concepts: dict[str, Concept] = {}
    for name in DO_OBO_FILES:
        for c in read_obo_file(folder / name, skips):
            seen = concepts.setdefault(c.id, c)
            if seen is not c:  # the same term in two subsets: keep the first name, merge the rest
                add_unique(seen.synonyms, *c.synonyms)
                add_unique(seen.parents, *c.parents)
                seen.definition = seen.definition or c.definition
    _humando_parents(folder / DO_TSV, concepts)
    return list(concepts.values())


def test_sets(diseases: list[Concept]) -> TestYield:
    """Every disease, for the concepts test (its held-out ones as queries, all names as the corpus)."""
    return TestYield(concepts=diseases)


def sibling_triplets(diseases: list[Concept]) -> list[dict]:
    """(EXACT synonym, name, a sibling's name) per synonym: a sibling shares a parent and has another name.

    The sibling is the one with the lowest hash (stable), among ``diseases`` only: a held-out disease's name
    must not become a training negative. (name, name, sibling) would have identical sides, so a disease
    without an EXACT synonym gives no triplet.
    """
    children: dict[str, list[Concept]] = defaultdict(list)  # parent id -> its diseases
    for c in diseases:
        for parent in c.parents:
            children[parent].append(c)
    rows = []
    for c in diseases:
        sibs = [s for p in c.parents for s in children[p] if leakage.key(s.name) != leakage.key(c.name)]
        if not sibs or not c.synonyms:
            continue
        neg = min(sibs, key=lambda s: bucket(f"do-sibling:{c.id}:{s.id}"))
        rows += [row(layout.TRIPLETS, "do_sibling", c.id, syn, c.name, neg.name) for syn in c.synonyms]
    return rows


def training_rows(diseases: list[Concept], skips: SkipLog) -> Rows:
    """Pairs (synonym -> name, name -> definition) and sibling triplets of the diseases not held out."""
    train = [c for c in diseases if not concept_held(c.id)]
    pairs = []
    for c in train:
        pairs += [row(layout.PAIRS, "do_synonym", c.id, s, c.name) for s in c.synonyms]
        if c.definition:
            pairs.append(row(layout.PAIRS, "do_definition", c.id, c.name, c.definition))
    return {layout.PAIRS: pairs, layout.TRIPLETS: sibling_triplets(train)}


def concept_names(concepts: list[Concept]) -> list[tuple[str, list[str]]]:
    """Each concept's names (name and synonyms), for the cross-source concept groups."""
    return [(c.id, [c.name, *c.synonyms]) for c in concepts]


SOURCE = Source(
    info=SourceInfo(
        folder="disease_ontology",
        row_sources=("do_synonym", "do_definition", "do_sibling"),
        name="Human Disease Ontology",
        license="CC0 1.0",
        role="train+validation: pairs (synonym->name, name->definition), triplets (sibling-disease "
        "negatives); test: concepts (7% of diseases by DOID, with every DO and HPO name as distractors)",
        url="https://github.com/DiseaseOntology/HumanDiseaseOntology",
        commit="9fbefd6651b79526165453395d06c8fd4bfe4247",
        attribution="Schriml et al., 2019, Human Disease Ontology 2018 update: classification, content and "
        "workflow expansion",
        bibtex="""@article{schriml2019human,
  title = {Human Disease Ontology 2018 update: classification, content and workflow expansion},
  author = {Schriml, Lynn M. and Mitraka, Elvira and Munro, James and Tauber, Becky and Schor, Mike and
    Nickle, Lance and Felix, Victor and Jeng, Linda and Bearer, Cynthia and Lichenstein, Richard and
    others},
  journal = {Nucleic Acids Research},
  volume = {47},
  number = {D1},
  pages = {D955--D962},
  year = {2019},
  doi = {10.1093/nar/gky1032}
}""",
    ),
    files=(*DO_OBO_FILES, DO_TSV),
    # @ 9fbefd6651b7
    pins={
        "DO_cancer_slim.obo": Pin("031af4f526edbb60978ed1d817e620f4ecbee57378e5e68819c6c95b64878a2a", 11325),
        "DO_infectious_disease_slim.obo": Pin(
            "7118594e9d8e89ae1b7834218fa0dcedd247f4b20ce7b32a2bc5be82e7dee820", 8782
        ),
        "DO_rare_slim.obo": Pin("7307b7d0df45aa765660caf3cea29f65d2ad91263b66ba9da4d77d4ebd8cd05a", 55698),
        "HumanDO.tsv": Pin("c862a3523b0308ae82df6ffd5b0781af83cc561a9e9aa2b25a3cee7e2b33452d", 12297),
        "NCIthesaurus.obo": Pin("dfaad715d526718d55ae2e32fa2af0626d98a0f1824886d586dc148980546f7c", 72825),
    },
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    concept_names=concept_names,
    hold_by_id=True,
    # Adding the ontologies left the validation rows of the other sources (and so what existing recipes
    # train on) as they were: their rows get their own validation draw and cap.
    validation_group="ontologies",
)
