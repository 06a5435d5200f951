"""The registry of raw sources: one module per source, each declaring one :class:`~medenc.data.source.Source`.

Adding a source is one new module here (its folder, files, pins, catalog entry, reader and what it yields;
see :mod:`medenc.data.source`) and one line in :data:`REGISTRY`. The pipeline, the pins
(:mod:`medenc.data.pins`) and the catalog (:mod:`medenc.data.catalog`) are derived from the registry.
"""

from __future__ import annotations

from medenc.data.source import Source
from medenc.data.sources import (
    biosses,
    cochrane_pls,
    covid_qa,
    disease_ontology,
    fda_unii,
    hpo_layperson,
    icd10cm,
    k_qa,
    laymaker,
    medec,
    medical_abbreviations,
    mediqa2021,
    medquad,
    meqsum,
    mts_dialog,
    nfcorpus_dev,
    pubmedqa,
    rqe_amia2016,
    simplewiki_medical,
    stsbenchmark,
    wordnet,
)

# In the order the manifest and the model card list the sources (the manifest's bytes depend on it).
REGISTRY: tuple[Source, ...] = (
    stsbenchmark.SOURCE,
    biosses.SOURCE,
    medquad.SOURCE,
    pubmedqa.SOURCE,
    rqe_amia2016.SOURCE,
    meqsum.SOURCE,
    medical_abbreviations.SOURCE,
    disease_ontology.SOURCE,
    hpo_layperson.SOURCE,
    # Medical names: held out by concept group across every source (medenc.data.concept_groups).
    icd10cm.SOURCE,
    wordnet.SOURCE,
    fda_unii.SOURCE,
    # Sentence sources: each with its held-out sentence test.
    laymaker.SOURCE,
    mts_dialog.SOURCE,
    simplewiki_medical.SOURCE,
    k_qa.SOURCE,
    mediqa2021.SOURCE,
    medec.SOURCE,
    # Zero-shot yardsticks: test only, after every other source so the others' rows keep their order.
    nfcorpus_dev.SOURCE,
    # Passage sources (issue 39), their own validation group: the older rows keep their order and draws.
    cochrane_pls.SOURCE,
    covid_qa.SOURCE,
)

# Adapters ready but not yet in the build (none at present): a source listed here is parsed by its tests
# only (the build takes it through its ``registry=`` parameter), so the prepared data keep their bytes.
PENDING: tuple[Source, ...] = ()

# The order in which the sources' test sets and training rows are concatenated, as the data was built before
# the registry: it decides the rows' order in the prepared files and which copy of a duplicate is kept, so
# it is kept to keep their bytes. A source not named here follows these, in REGISTRY order.
TEST_ORDER = (
    "biosses",
    "stsbenchmark",
    "rqe_amia2016",
    "medical_abbreviations",
    "medquad",
    "pubmedqa",
    "disease_ontology",
    "hpo_layperson",
)
ROW_ORDER = (
    "stsbenchmark",
    "medquad",
    "medical_abbreviations",
    "meqsum",
    "rqe_amia2016",
    "disease_ontology",
    "hpo_layperson",
)


def in_order(registry: tuple[Source, ...], order: tuple[str, ...]) -> list[Source]:
    """``registry`` sorted by position in ``order`` (TEST_ORDER or ROW_ORDER); the others after, as listed."""
    rank = {folder: i for i, folder in enumerate(order)}
    return sorted(registry, key=lambda s: rank.get(s.folder, len(order)))
