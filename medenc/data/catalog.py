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
    # The Hub dataset that holds the same data (checked: same rows and gold), "" where none does; the card's
    # `datasets:` metadata links it.
    hub_dataset: str = ""
    bibtex: str = ""  # the source's own citation, for the card's BibTeX section
    # The `source` values its training rows carry in the prepared sets (what recipes select by): the card
    # credits a source as trained on only where the run's record shows rows of one of them.
    row_sources: tuple[str, ...] = ()


_SOURCES = (
    SourceInfo(
        folder="stsbenchmark",
        row_sources=("stsb",),
        name="STS Benchmark",
        license="CC BY-SA 4.0 (scores); sentence texts per LICENSE.txt",
        role="train+validation: graded_pairs (train+dev); test: stsb (general-domain control)",
        url="https://github.com/zhangzhenhu/Semantic-Texual-Similarity-Toolkits",
        commit="c55a72f51bd15a8bd75114247c06984b432050f9",
        attribution="Cer et al., 2017, SemEval-2017 Task 1: Semantic Textual Similarity",
        hub_dataset="sentence-transformers/stsb",
        bibtex="""@inproceedings{cer2017semeval,
  title = {{SemEval}-2017 Task 1: Semantic Textual Similarity Multilingual and Crosslingual Focused
    Evaluation},
  author = {Cer, Daniel and Diab, Mona and Agirre, Eneko and Lopez-Gazpio, I{\\~n}igo and Specia, Lucia},
  booktitle = {Proceedings of the 11th International Workshop on Semantic Evaluation (SemEval-2017)},
  pages = {1--14},
  year = {2017}
}""",
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
    SourceInfo(
        folder="medquad",
        row_sources=("medquad_qa", "medquad_synonym"),
        name="MedQuAD",
        license="CC BY 4.0",
        role="train+validation: pairs (question->answer, synonym->focus); test: retrieval, triplets, "
        "terms (synonyms of held-out documents)",
        url="https://github.com/abachaa/MedQuAD",
        commit="577bd37b96c02d1833b2c9eed2de9f96964e96cb",
        attribution="Ben Abacha and Demner-Fushman, 2019, "
        "A question-entailment approach to question answering",
        bibtex="""@article{benabacha2019question,
  title = {A Question-Entailment Approach to Question Answering},
  author = {Ben Abacha, Asma and Demner-Fushman, Dina},
  journal = {BMC Bioinformatics},
  volume = {20},
  number = {1},
  pages = {511},
  year = {2019}
}""",
    ),
    SourceInfo(
        folder="pubmedqa",
        name="PubMedQA (PQA-L)",
        license="MIT",
        role="test only: pubmedqa retrieval (500 official test PMIDs)",
        url="https://github.com/pubmedqa/pubmedqa",
        commit="1cbae8e92f72f20c8d3747cbb3bf5bc53554d997",
        attribution="Jin et al., 2019, PubMedQA: A dataset for biomedical research question answering",
        hub_dataset="qiaojin/PubMedQA",
        bibtex="""@inproceedings{jin2019pubmedqa,
  title = {{PubMedQA}: A Dataset for Biomedical Research Question Answering},
  author = {Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle = {Proceedings of EMNLP-IJCNLP 2019},
  pages = {2567--2577},
  year = {2019}
}""",
    ),
    SourceInfo(
        folder="rqe_amia2016",
        row_sources=("rqe",),
        name="RQE (AMIA 2016)",
        license="CC BY 4.0",
        role="train+validation: graded_pairs (1.0/0.0), pairs, triplets; test: rqe",
        url="https://github.com/abachaa/RQE_Data_AMIA2016",
        commit="9302fb9a55a437944ba6ce21a30023463a94a136",
        attribution="Ben Abacha and Demner-Fushman, 2016, Recognizing question entailment for medical "
        "question answering",
        bibtex="""@inproceedings{benabacha2016recognizing,
  title = {Recognizing Question Entailment for Medical Question Answering},
  author = {Ben Abacha, Asma and Demner-Fushman, Dina},
  booktitle = {AMIA Annual Symposium Proceedings},
  pages = {310--318},
  year = {2016}
}""",
    ),
    SourceInfo(
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
    SourceInfo(
        folder="medical_abbreviations",
        row_sources=("medical_abbreviations",),
        name="medical_abbreviations",
        license="MIT",
        role="train+validation: pairs (abbreviation->meaning); test: terms (10% of abbreviations)",
        url="https://github.com/imantsm/medical_abbreviations",
        commit="ce0e8397e88afc953a18681100e75bcc145dd4b5",
        attribution="imantsm/medical_abbreviations (a best-effort list; may contain inaccuracies)",
        bibtex="""@misc{imantsm_medical_abbreviations,
  title = {medical\\_abbreviations: a list of medical abbreviations},
  author = {imantsm},
  howpublished = {\\url{https://github.com/imantsm/medical_abbreviations}},
  note = {commit ce0e8397e88afc953a18681100e75bcc145dd4b5}
}""",
    ),
    SourceInfo(
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
    SourceInfo(
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
)

# Keyed by folder, in the order the manifest lists the sources (its bytes, hence its hash, depend on it).
CATALOG: dict[str, SourceInfo] = {s.folder: s for s in _SOURCES}
