"""Tokenize once (``phaseN.pretokenize``): same features and losses as per-batch tokenizing, a cache that hits
and misses when it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from fakes import tiny_loader, train_tiny

from medenc.core.layout import LOSS_HISTORY, PHASE_DIRS
from medenc.training.tokenize import (
    Layout,
    cache_key,
    pad_features,
    padding_collator,
    text_view,
    tokenize_texts,
    tokenized,
)
from medenc.training.trainer import data_collator

EVERY_PHASE = [f"phase{n}.pretokenize=true" for n in (1, 2, 3)]


def _rows(ds: Dataset) -> list[dict]:
    return [ds[i] for i in range(len(ds))]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert value.dtype == b[key].dtype and torch.equal(value, b[key]), key
        else:
            assert value == b[key], key


@pytest.fixture
def model():
    """The tiny random MPNet (the session's shared one must not change), truncating some rows at 16 tokens."""
    from medenc.core.modeling import build_random_model

    return build_random_model("tiny", max_seq_length=16)


@pytest.mark.parametrize("multiple", [None, 8])
@pytest.mark.parametrize("name", ["graded_pairs", "pairs", "triplets"])
def test_the_padding_collator_builds_the_per_batch_features(model, tmp_path, name, multiple):
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    ds = tiny_loader("train", name)
    ds = ds.select_columns([c for c in ds.column_names if c != "source"])
    tok, hit = tokenized(model, ds, "t", root=tmp_path)
    assert not hit and text_view(tok).column_names == ds.column_names
    # Without pad_to_multiple_of the Trainer builds its own collator: built here as it builds it.
    theirs = data_collator(model, multiple) or SentenceTransformerDataCollator(preprocess_fn=model.preprocess)
    _assert_same(padding_collator(model, multiple)(_rows(tok)), theirs(_rows(ds)))


def test_padding_to_max_length_equals_tokenizing_to_it(model):
    texts = ["a short one", "a somewhat longer text about hypertension and its treatment in adults"]
    layout = Layout.of(model)
    once = tokenize_texts(model, texts)
    rows = {k: once[k] for k in layout.token_keys}
    text = {"padding": "max_length", "max_length": 24, "truncation": "longest_first"}
    direct = dict(model.preprocess(texts, processing_kwargs={"text": text}))
    _assert_same(pad_features(model.tokenizer, rows, layout, max_length=24), direct)


def test_the_cache_hits_again_and_misses_on_new_rows_tokenizer_or_length(model, tmp_path):
    from medenc.core.modeling import build_random_model

    model.max_seq_length = 32
    ds = Dataset.from_dict({"anchor": ["one text", "two texts"], "positive": ["a", "b"]})
    _, hit = tokenized(model, ds, "p", root=tmp_path)
    again, hit2 = tokenized(model, ds, "p", root=tmp_path)
    assert (hit, hit2) == (False, True) and again["anchor_input_ids"][0][0] == 0
    key = cache_key(model, ds)
    changed = Dataset.from_dict({"anchor": ["one text", "two text"], "positive": ["a", "b"]})
    assert cache_key(model, changed) != key
    model.max_seq_length = 16
    assert cache_key(model, ds) != key
    model.max_seq_length = 32
    other = build_random_model("tiny", max_seq_length=32)
    assert cache_key(other, ds) == key  # the same tokenizer files: weights do not matter
    other.tokenizer.add_tokens(["hypertensionx"])
    assert cache_key(other, ds) != key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def _train(tmp_path: Path, monkeypatch, overrides=()) -> dict[int, list]:
    """The tiny recipe's loss histories per phase (same seed), with the tokenized sets cached in tmp_path."""
    monkeypatch.setenv("MEDENC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / str(len(overrides))
    train_tiny(out, "t", overrides)
    return {n: json.loads((out / "t" / PHASE_DIRS[n] / LOSS_HISTORY).read_text()) for n in (1, 2, 3)}


@pytest.mark.parametrize("grouped", [False, True])
def test_tiny_recipe_losses_equal_with_and_without_pretokenize(tmp_path, monkeypatch, grouped):
    # Length grouping reads the rows' lengths: the token columns must not count (text_view).
    extra = [f"phase{n}.group_by_length=true" for n in (2, 3)] if grouped else []
    off = _train(tmp_path, monkeypatch, extra)
    on = _train(tmp_path, monkeypatch, extra + EVERY_PHASE)
    assert (tmp_path / "cache" / "tokenized").is_dir()
    for n in (1, 2, 3):
        assert [{k: v for k, v in e.items() if "loss" not in k} for e in on[n]] == [
            {k: v for k, v in e.items() if "loss" not in k} for e in off[n]
        ]
        for a, b in zip(on[n], off[n], strict=True):
            for k in (k for k in a if "loss" in k):
                assert a[k] == pytest.approx(b[k], abs=1e-6), (n, k)
