"""Quality targets: thresholds, the halfway rule and the CI requirement, on constructed results."""

from __future__ import annotations

import pytest

from medenc.errors import RunError
from medenc.report import TARGETS, check_targets, targets_markdown


def _results(base: dict[tuple[str, str], float], model: dict[tuple[str, str], tuple[float, float]]) -> dict:
    """results.json-shaped dict: base values, and for 'phase-2-mnrl' (value, ci_low of the paired diff)."""
    res: dict = {"base": {}, "phase-2-mnrl": {}}
    deltas: dict = {"phase-2-mnrl": {}}
    for (s, m), v in base.items():
        value, ci_low = model[(s, m)]
        res["base"].setdefault(s, {})[m] = {"value": v}
        res["phase-2-mnrl"].setdefault(s, {})[m] = {"value": value}
        deltas["phase-2-mnrl"].setdefault(s, {})[m] = {
            "diff": value - v,
            "ci_low": ci_low,
            "ci_high": value - v + 0.01,
        }
    return {"models": {"final": {"from": "phase-2-mnrl"}}, "results": res, "deltas": deltas}


BASE = {(t.set, t.metric): 0.8 for t in TARGETS}


def test_targets_met_and_missed():
    model = {k: (0.8, -0.001) for k in BASE}
    model[("biosses", "spearman")] = (0.84, 0.01)  # +0.04, CI excludes zero: met
    model[("rqe", "ap")] = (0.86, -0.002)  # +0.06 but CI includes zero: not met
    model[("medquad", "ndcg@10")] = (0.87, 0.02)  # needs +0.08 = 0.88: not met
    model[("pubmedqa", "ndcg@10")] = (0.796, -0.01)  # -0.004 >= -0.005: met
    model[("stsb", "spearman")] = (0.79, -0.02)  # -0.01: not met
    rows = {r["set"]: r for r in check_targets(_results(BASE, model))}
    assert {k: v["met"] for k, v in rows.items()} == {
        "biosses": True,
        "rqe": False,
        "medquad": False,
        "pubmedqa": True,
        "stsb": False,
    }
    assert rows["medquad"]["needed"] == pytest.approx(0.88)
    assert "**no**" in targets_markdown(list(rows.values()), "phase-2-mnrl")


def test_medquad_halfway_rule_above_084():
    base = dict(BASE)
    base[("medquad", "ndcg@10")] = 0.9
    model = {k: (base[k], 0.0) for k in base}
    model[("medquad", "ndcg@10")] = (0.95, 0.01)  # halfway from 0.9 to 1.0
    row = next(r for r in check_targets(_results(base, model)) if r["set"] == "medquad")
    assert row["needed"] == pytest.approx(0.95) and row["met"]


def test_missing_metric_is_a_clear_error():
    results = _results(BASE, {k: (0.8, 0.0) for k in BASE})
    del results["results"]["base"]["rqe"]
    with pytest.raises(RunError, match="ap on rqe"):
        check_targets(results)


def test_ablation_table_reads_runs_and_lists_the_missing(tmp_path, monkeypatch):
    import json

    from medenc import ablation

    monkeypatch.setenv("OUTPUTS_DIR", str(tmp_path))
    with pytest.raises(RunError, match="main run has no results"):
        ablation.table()
    res = {"base": {}, **{v.model: {} for v in ablation.VARIANTS}}
    deltas: dict = {v.model: {} for v in ablation.VARIANTS}
    for s, m, _ in ablation.COLUMNS:
        for model in res:
            res[model][s] = {m: {"value": 0.9 if model != "base" else 0.8}}
            if model != "base":
                deltas[model][s] = {m: {"diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "significant": True}}
    deltas["phase-1-cosine"]["rqe"]["ap"].update(ci_low=-0.01, significant=False)
    (tmp_path / "cpu" / "eval").mkdir(parents=True)
    (tmp_path / "cpu" / "eval" / "results.json").write_text(json.dumps({"results": res, "deltas": deltas}))
    text = ablation.table()
    assert "| base (all-mpnet-base-v2) | 0.800 |" in text
    assert "0.900 (+0.100 [-0.010, +0.150] †)" in text  # not significant is marked
    assert "Not run yet: phase 1 with CoSENTLoss" in text
    assert 'RUN=abl-cosent TRAIN_ARGS="--set phase1.loss=cosent' in text
