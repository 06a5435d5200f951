"""Weight averaging with the starting model (recipe key ``average``): chosen on validation, kept, scored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from fakes import tiny_sets
from safetensors.torch import load_file

from medenc.core.errors import RecipeError
from medenc.core.layout import AVERAGED_DIR, FINAL_DIR, PHASE_DIRS, WEIGHTS_FILE
from medenc.core.paths import PROJECT_ROOT
from medenc.evaluation.models import find_models
from medenc.training import averaging, run_training
from medenc.training.averaging import interpolate
from medenc.training.recipe import load_recipe

TINY = PROJECT_ROOT / "recipes" / "tiny.yaml"
DATA = {split: tiny_sets(split) for split in ("train", "validation")}
ONE_PHASE = ["phase2.enabled=false", "phase3.enabled=false"]


def loader(split: str, name: str) -> Dataset:
    return DATA[split][name]


def _run(tmp_path: Path, overrides=()) -> dict:
    recipe = load_recipe(TINY, [*ONE_PHASE, *overrides])
    record = run_training(
        recipe, "t", recipe_path=TINY, output_dir=tmp_path, loader=loader, data_hash="d" * 64
    )
    return record.to_dict()


def test_interpolate_is_a_line_between_the_two_models():
    start = {"w": torch.zeros(2, 2), "ids": torch.arange(3)}
    tuned = {"w": torch.ones(2, 2) * 4, "ids": torch.arange(3) + 1}
    assert torch.equal(interpolate(start, tuned, 1.0)["w"], tuned["w"])
    assert torch.equal(interpolate(start, tuned, 0.25)["w"], torch.ones(2, 2))
    assert torch.equal(interpolate(start, tuned, 0.25)["ids"], tuned["ids"])  # integers are not averaged
    with pytest.raises(ValueError, match="keys differ"):
        interpolate({"w": torch.zeros(1)}, {"v": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match=r"shapes \(1,\) and \(2,\)"):
        interpolate({"w": torch.zeros(1)}, {"w": torch.zeros(2)}, 0.5)


@pytest.mark.parametrize("weights", ["[0.0, 0.5]", "[1.5]", "[]"])
def test_weights_outside_zero_to_one_are_refused(weights):
    with pytest.raises(RecipeError, match=r"average.weights.*\(0, 1\]"):
        load_recipe(TINY, ["average.enabled=true", f"average.weights={weights}"])


def test_the_best_validation_share_becomes_final_and_is_scored(tmp_path, monkeypatch, caplog):
    # The scorer is replaced so the test decides which share wins (the tiny model's figures are noise).
    shares = iter([{"pairs": 0.9}, {"pairs": 0.8}])  # candidates in order: 0.5, then 1.0
    monkeypatch.setattr(averaging, "_score", lambda *a, **k: next(shares))
    record = _run(tmp_path, ["average.enabled=true", "average.weights=[0.5]"])
    run_dir = tmp_path / "t"
    average = record["final"]["average"]
    assert record["final"]["from"] == AVERAGED_DIR and average["weight"] == 0.5
    assert [c["weight"] for c in average["candidates"]] == [0.5, 1.0] and average["of"] == PHASE_DIRS[1]
    # final/ holds the midpoint of the starting model (the tiny recipe's seeded random weights) and phase 1.
    from medenc.training.trainer import load_model

    start = load_model(load_recipe(TINY, ONE_PHASE), None, 32)[0].auto_model.state_dict()
    tuned = load_file(run_dir / PHASE_DIRS[1] / WEIGHTS_FILE)
    final = load_file(run_dir / FINAL_DIR / WEIGHTS_FILE)
    key = next(k for k in final if k.endswith("attention.attn.q.weight"))
    assert torch.allclose(final[key], (start[key] + tuned[key]) / 2, atol=1e-6)

    # A rerun keeps the choice without scoring again (the scorer would raise: its iterator is spent).
    caplog.set_level(logging.INFO, logger="medenc.training")
    again = _run(tmp_path, ["average.enabled=true", "average.weights=[0.5]"])
    assert "the choice of an earlier finish stands" in caplog.text
    assert again["final"] == record["final"]

    # Averaging off: the trained phase is kept (no "different recipe"), averaged/ goes, final/ is phase 1.
    off = _run(tmp_path)
    assert off["final"]["from"] == PHASE_DIRS[1] and "average" not in off["final"]
    assert not (run_dir / AVERAGED_DIR).exists()
    assert off["phases"][0]["model_sha256"] == record["phases"][0]["model_sha256"]


def test_the_weight_average_is_scored_as_a_model_of_its_own(tmp_path, monkeypatch, tiny_model):
    shares = iter([{"pairs": 0.9}, {"pairs": 0.8}])
    monkeypatch.setattr(averaging, "_score", lambda *a, **k: next(shares))
    _run(tmp_path, ["average.enabled=true", "average.weights=[0.5]"])
    base = tmp_path / "base"
    tiny_model.save(str(base))
    refs, info = find_models(tmp_path / "t", base, "cpu")
    assert [r.name for r in refs] == ["base", PHASE_DIRS[1], AVERAGED_DIR]
    assert info["final"]["from"] == AVERAGED_DIR and info["final"]["matches_from"] is True
    assert info[AVERAGED_DIR]["phase"] is None


def test_no_average_when_validation_prefers_the_tuned_model(tmp_path, monkeypatch):
    shares = iter([{"pairs": 0.7}, {"pairs": 0.8}])
    monkeypatch.setattr(averaging, "_score", lambda *a, **k: next(shares))
    record = _run(tmp_path, ["average.enabled=true", "average.weights=[0.5]"])
    assert record["final"]["from"] == PHASE_DIRS[1] and record["final"]["average"]["weight"] == 1.0
    assert not (tmp_path / "t" / AVERAGED_DIR).exists()


def test_every_validation_kind_is_scored_and_the_best_mean_chosen(tmp_path):
    record = _run(tmp_path, ["average.enabled=true"])
    average = record["final"]["average"]
    assert average["validation_rows"] == {"graded_pairs": 4, "pairs": 8, "triplets": 4}
    for c in average["candidates"]:
        assert set(c["scores"]) == {"graded_pairs", "pairs", "triplets"}
        assert c["mean"] == pytest.approx(sum(c["scores"].values()) / 3, abs=1e-6)
    best = max(average["candidates"], key=lambda c: (c["mean"], c["weight"]))
    assert average["weight"] == best["weight"]
