"""medenc/data/twins.py: rule-made near misses of the training pairs."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from medenc.core.layout import PAIRS, TRIPLETS
from medenc.data import twins

WORDS = twins.vocabulary(["hypokalemia hyperkalemia hypoplasia hyperplasia hypoxia"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hyperkalemia", "Hypokalemia"),  # prefix, case kept
        ("Aplasia/Hypoplasia of the cochlea", "Aplasia/Hyperplasia of the cochlea"),
        ("Schwartz Jampel syndrome type 1", "Schwartz Jampel syndrome type 2"),
        ("Osteogenesis imperfecta, type II", "Osteogenesis imperfecta, type I"),
        ("malignant neoplasm of endometrium", "benign neoplasm of endometrium"),
        ("High blood pressure", "Low blood pressure"),
        ("Appetite - decreased", "Appetite - increased"),
        ("HIV POSITIVE", "HIV NEGATIVE"),
        ("residual left leg weakness", "residual right leg weakness"),
        ("fulminant hepatitis NEC, with hepatic failure", "fulminant hepatitis NEC, without hepatic failure"),
    ],
)
def test_one_meaning_bearing_word_is_flipped(text, expected):
    assert twins.twin(text, WORDS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hypoxia",  # "hyperoxia" is not a word of the corpus: no twin made up
        "gout",
        "He left the hospital on day three",  # not a side of the body
        "Preventing pulmonary embolism begins with preventing deep vein thrombosis in people at risk of it",
        " ".join(["acute"] * (twins.MAX_WORDS + 1)),  # a passage, not a name or a sentence
    ],
)
def test_no_twin_where_no_word_carries_the_meaning(text):
    assert twins.twin(text, WORDS) is None


def test_prefix_flips_come_before_antonyms_and_only_one_word_flips():
    assert twins.twin("Acute hyperkalemia", WORDS) == "Acute hypokalemia"


def test_the_anchor_side_is_used_when_only_it_has_a_twin():
    rows = twins.twin_rows(
        [
            {"anchor": "Potassium excess", "positive": "Hyperkalemia", "source": "hpo_lay"},
            {"anchor": "High blood pressure", "positive": "hypertension", "source": "do_synonym"},
            {"anchor": "gout", "positive": "podagra", "source": "do_synonym"},
        ],
        WORDS,
    )
    assert [(r["anchor"], r["positive"], r["negative"]) for r in rows] == [
        ("Potassium excess", "Hyperkalemia", "Hypokalemia"),
        ("hypertension", "High blood pressure", "Low blood pressure"),  # "hypotension" is not in WORDS
    ]
    assert {r["source"] for r in rows} == {twins.SOURCE}


def test_twins_join_training_only_and_never_a_test_text():
    sets = {
        ("train", PAIRS): [
            {"anchor": "Potassium excess", "positive": "Hyperkalemia", "source": "hpo_lay", "_group": "a"},
            {"anchor": "Low blood sugar", "positive": "Hypoglycemia", "source": "hpo_lay", "_group": "b"},
            {
                "anchor": "Sclerosis of the distal phalanx of the 2nd finger",
                "positive": "Acute",
                "source": "x",
            },
        ],
        ("validation", PAIRS): [{"anchor": "Big liver", "positive": "Hyperplasia of liver", "source": "x"}],
        ("train", TRIPLETS): [{"anchor": "a", "positive": "b", "negative": "c", "source": "rqe"}],
        ("validation", TRIPLETS): [],
        ("train", "graded_pairs"): [{"sentence1": "hyperglycemia", "sentence2": "hypokalemia", "score": 1.0}],
    }
    dropped: dict = defaultdict(Counter)
    test = "aplasia of the distal phalanx of the 2nd finger"  # one word from a pair's text
    twins.add_twins(sets, {"near_misses": ["hyperglycemia"], "concepts": [test]}, dropped)
    # the first twin is kept; the second (Hyperglycemia) is a test text, the third shares an 8-gram with one
    assert [r["negative"] for r in sets[("train", TRIPLETS)]] == ["c", "Hypokalemia"]
    assert dropped[f"{TRIPLETS}: twin shares a word 8-gram with a test text"][twins.SOURCE] == 2
    assert sets[("validation", TRIPLETS)] == []  # a validation pair seeds nothing
