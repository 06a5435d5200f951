"""The one record of every raw source: display name, licence, role in the pipeline, upstream and citation.

The data manifest (:mod:`medenc.data.prepare`) copies ``license`` and ``role`` from here; the model card reads
the manifest and falls back to this catalog for whatever the manifest lacks (e.g. no ``make data`` on the
machine). ``url`` and ``commit`` mirror ``../shared/data/<folder>/SOURCE.txt``; the manifest reads those from
SOURCE.txt itself, so that it records what was really on disk.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceInfo:
    """One raw source, keyed by its ``folder`` under the raw data root."""

    folder: str
    name: str  # display name (model card)
    license: str
    role: str  # which splits and sets it feeds; "test only" marks a source never trained on
    url: str  # upstream repository
    commit: str  # upstream commit of the copy under the raw data root
    attribution: str  # citation for the model card


_SOURCES = (
    SourceInfo(
        folder="stsbenchmark",
        name="STS Benchmark",
        license="CC BY-SA 4.0 (scores); sentence texts per LICENSE.txt",
        role="train+validation: graded_pairs (train+dev); test: stsb (general-domain control)",
        url="https://github.com/zhangzhenhu/Semantic-Texual-Similarity-Toolkits",
        commit="c55a72f51bd15a8bd75114247c06984b432050f9",
        attribution="Cer et al., 2017, SemEval-2017 Task 1: Semantic Textual Similarity",
    ),
    SourceInfo(
        folder="biosses",
        name="BIOSSES",
        license="GPL-3.0 (repository license)",
        role="test only: biosses",
        url="https://github.com/gizemsogancioglu/biosses",
        commit="381b24030e06b77f9c50ee245e86c65cd700407a",
        attribution="Soğancıoğlu, Öztürk and Özgür, 2017, BIOSSES: a semantic sentence similarity "
        "estimation system for the biomedical domain",
    ),
    SourceInfo(
        folder="medquad",
        name="MedQuAD",
        license="CC BY 4.0",
        role="train+validation: pairs (question->answer, synonym->focus); test: retrieval, triplets, "
        "terms (synonyms of held-out documents)",
        url="https://github.com/abachaa/MedQuAD",
        commit="577bd37b96c02d1833b2c9eed2de9f96964e96cb",
        attribution="Ben Abacha and Demner-Fushman, 2019, "
        "A question-entailment approach to question answering",
    ),
    SourceInfo(
        folder="pubmedqa",
        name="PubMedQA (PQA-L)",
        license="MIT",
        role="test only: pubmedqa retrieval (500 official test PMIDs)",
        url="https://github.com/pubmedqa/pubmedqa",
        commit="1cbae8e92f72f20c8d3747cbb3bf5bc53554d997",
        attribution="Jin et al., 2019, PubMedQA: A dataset for biomedical research question answering",
    ),
    SourceInfo(
        folder="rqe_amia2016",
        name="RQE (AMIA 2016)",
        license="CC BY 4.0",
        role="train+validation: graded_pairs (1.0/0.0), pairs, triplets; test: rqe",
        url="https://github.com/abachaa/RQE_Data_AMIA2016",
        commit="9302fb9a55a437944ba6ce21a30023463a94a136",
        attribution="Ben Abacha and Demner-Fushman, 2016, Recognizing question entailment for medical "
        "question answering",
    ),
    SourceInfo(
        folder="meqsum",
        name="MeQSum",
        license="CC BY 4.0",
        role="train+validation: pairs (CHQ->summary)",
        url="https://github.com/abachaa/MeQSum",
        commit="51e36cf65c12602333b6fdc3ae8ecf10430529f7",
        attribution="Ben Abacha and Demner-Fushman, 2019, On the summarization of consumer health questions",
    ),
    SourceInfo(
        folder="medical_abbreviations",
        name="medical_abbreviations",
        license="MIT",
        role="train+validation: pairs (abbreviation->meaning); test: terms (10% of abbreviations)",
        url="https://github.com/imantsm/medical_abbreviations",
        commit="ce0e8397e88afc953a18681100e75bcc145dd4b5",
        attribution="imantsm/medical_abbreviations (a best-effort list; may contain inaccuracies)",
    ),
)

# Keyed by folder, in the order the manifest lists the sources (its bytes, hence its hash, depend on it).
CATALOG: dict[str, SourceInfo] = {s.folder: s for s in _SOURCES}
