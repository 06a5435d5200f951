"""Charts: valid PNGs of the expected pixel size (figsize × dpi), including missing loss histories."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from medenc.evaluation import write_charts
from medenc.evaluation.charts import DPI, model_colors
from medenc.evaluation.results import Results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which always directly follows the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def fake_results() -> Results:
    models = ["base", "phase-1-cosine", "phase-3-triplet"]
    sets = {
        "biosses": {"task": "sts", "n": 10, "metrics": ["spearman"], "title": "BIOSSES"},
        "medquad": {
            "task": "retrieval",
            "n": 8,
            "metrics": ["recall@5", "ndcg@10", "mrr@10"],
            "title": "MedQuAD",
        },
    }
    results, deltas = {}, {}
    for i, model in enumerate(models):
        results[model] = {
            s: {
                m: {"value": 0.5 + 0.1 * i, "ci_low": 0.4 + 0.1 * i, "ci_high": 0.6 + 0.1 * i, "n": 10}
                for m in meta["metrics"]
            }
            for s, meta in sets.items()
        }
        if model != "base":
            deltas[model] = {
                s: {
                    m: {
                        "diff": 0.1 * i,
                        "ci_low": 0.1 * i - 0.15,
                        "ci_high": 0.1 * i + 0.05,
                        "significant": 0.1 * i - 0.15 > 0,
                    }
                    for m in meta["metrics"]
                }
                for s, meta in sets.items()
            }
    doc = {
        "schema_version": 1,
        "run": "toy",
        "models": {**{m: {} for m in models}, "final": {"from": "phase-3-triplet"}},
        "sets": sets,
        "results": results,
        "deltas": deltas,
    }
    return Results.from_doc(doc, Path("toy/eval/results.json"))


def test_charts_are_pngs_of_the_expected_size(tmp_path):
    run = tmp_path / "run"
    (run / "phase-1-cosine").mkdir(parents=True)
    (run / "phase-1-cosine" / "loss_history.json").write_text(
        json.dumps([{"step": s, "loss": 1 / s} for s in range(1, 6)] + [{"step": 5, "eval_loss": 0.3}])
    )  # phase-3 has no history: its panel says so instead of failing
    paths = write_charts(fake_results(), run, tmp_path / "eval")
    assert [p.name for p in paths] == ["metrics.png", "loss_curves.png", "deltas.png"]
    # 4 metric panels: 1 x 4 grid of 4.2 x 3.8 in; 2 phases: 1 x 2 of 4.8 x 3.6 in; 2 sets: 1 x 2 of 5.2 in.
    assert png_size(paths[0]) == (round(4.2 * 4 * DPI), round(3.8 * DPI))
    assert png_size(paths[1]) == (round(4.8 * 2 * DPI), round(3.6 * DPI))
    assert png_size(paths[2])[0] == round(5.2 * 2 * DPI)


def test_final_phase_is_tab_orange_and_base_tab_blue():
    colors = model_colors(fake_results())
    assert colors["base"] == "tab:blue" and colors["phase-3-triplet"] == "tab:orange"
    assert colors["phase-1-cosine"] not in ("tab:blue", "tab:orange")
