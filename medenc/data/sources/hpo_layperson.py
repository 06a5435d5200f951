"""HPO layperson synonyms: clinical phenotype labels and their plain-language phrasings.

Terms held out by HP id (:func:`medenc.data.source.concept_held`) join the concepts test; the others give
(lay phrasing -> clinical label) pairs.
"""

from __future__ import annotations

from pathlib import Path

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data.parsing import SkipLog, add_unique, read_quoted_tsv
from medenc.data.source import Concept, Pin, Rows, Source, SourceInfo, TestYield, concept_held, row

HPO_TSV = "layperson-synonyms.tsv"
HPO_TSV_HEADER = ("?term", "?term_label", "?layperson")
HPO_IRI_PREFIX = "<http://purl.obolibrary.org/obo/HP_"


def _hpo_id(iri: str, path: Path, where: str) -> str:
    """``<http://purl.obolibrary.org/obo/HP_0002648>`` -> ``HP:0002648``."""
    digits = iri.removeprefix(HPO_IRI_PREFIX).removesuffix(">")
    if not (iri.startswith(HPO_IRI_PREFIX) and iri.endswith(">") and digits.isdigit()):
        raise DataError(path, where, f"an HPO term IRI {HPO_IRI_PREFIX}<digits>>", repr(iri))
    return f"HP:{digits}"


def read(folder: Path, skips: SkipLog | None = None) -> list[Concept]:
    """HPO terms with their layperson phrasings (``synonyms``), in first-seen order."""
    path = folder / HPO_TSV
    concepts: dict[str, Concept] = {}
    for n, (iri, label, lay) in read_quoted_tsv(path, HPO_TSV_HEADER, (1, 2)):
        hp = _hpo_id(iri, path, f"line {n}, column 1 (?term)")
        c = concepts.setdefault(hp, Concept(hp, label))
        if c.name != label:
            raise DataError(path, f"line {n}, column 2", f"the label of {hp} given before: {c.name!r}", label)
        add_unique(c.synonyms, lay)
    return list(concepts.values())


def test_sets(phenotypes: list[Concept]) -> TestYield:
    """Every term, for the concepts test (its held-out ones as queries, all labels as the corpus)."""
    return TestYield(concepts=phenotypes)


def training_rows(phenotypes: list[Concept], skips: SkipLog) -> Rows:
    """Lay phrasing -> clinical label pairs of the terms not held out."""
    pairs = [
        row(layout.PAIRS, "hpo_lay", c.id, s, c.name)
        for c in phenotypes
        if not concept_held(c.id)
        for s in c.synonyms
    ]
    return {layout.PAIRS: pairs}


def concept_names(concepts: list[Concept]) -> list[tuple[str, list[str]]]:
    """Each concept's names (name and synonyms), for the cross-source concept groups."""
    return [(c.id, [c.name, *c.synonyms]) for c in concepts]


SOURCE = Source(
    info=SourceInfo(
        folder="hpo_layperson",
        row_sources=("hpo_lay",),
        name="Human Phenotype Ontology (layperson synonyms)",
        license="HPO license: free for any use, acknowledging the HPO Consortium and the file version",
        role="train+validation: pairs (lay phrasing->clinical label); test: concepts (7% of terms by HP id)",
        url="https://github.com/obophenotype/human-phenotype-ontology",
        commit="af70204caaaac7023f6606ead6a3970d5c303575",
        # The HPO license asks for this acknowledgement, with the version of the files used, wherever the
        # product is shown publicly.
        attribution="This product uses the Human Phenotype Ontology (version "
        "af70204caaaac7023f6606ead6a3970d5c303575, 2026-08-14), https://hpo.jax.org; "
        "Köhler et al., 2021, The Human Phenotype Ontology in 2021",
        bibtex="""@article{kohler2021human,
  title = {The {Human Phenotype Ontology} in 2021},
  author = {K{\\"o}hler, Sebastian and Gargano, Michael and Matentzoglu, Nicolas and Carmody, Leigh C. and
    Lewis-Smith, David and Vasilevsky, Nicole A. and Danis, Daniel and Balagura, Ganna and Baynam, Gareth
    and Brower, Amy M. and others},
  journal = {Nucleic Acids Research},
  volume = {49},
  number = {D1},
  pages = {D1207--D1217},
  year = {2021},
  doi = {10.1093/nar/gkaa1043}
}""",
    ),
    files=(HPO_TSV,),
    # @ af70204caaaa
    pins={HPO_TSV: Pin("2d22863798dbd660ea613f2f42a3f0c577941d6580764d5dc50bd372754ec3a0", 7187)},
    read=read,
    test_sets=test_sets,
    training_rows=training_rows,
    concept_names=concept_names,
    hold_by_id=True,
    validation_group="ontologies",
)
