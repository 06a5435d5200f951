"""Charts of an evaluation: metric bars with CIs, each phase's loss curve, and a forest plot of Δ vs base.

Matplotlib with the Agg backend (no display needed). Figures use a fixed size and constrained layout rather
than ``bbox_inches="tight"``, so every PNG has a predictable size (figsize × dpi) that tests can check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from medenc.core import layout
from medenc.evaluation.results import final_phase, model_label

DPI = 120
BASE_COLOR = "tab:blue"
FINAL_COLOR = "tab:orange"
# Earlier phases in lighter oranges, so the eye lands on base (blue) vs final (tab:orange).
PHASE_SHADES = ("#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d")

METRICS_PNG = "metrics.png"
LOSS_PNG = "loss_curves.png"
DELTAS_PNG = "deltas.png"


def _pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_colors(results: dict) -> dict[str, str]:
    """Blue for base, tab:orange for the phase final/ comes from (else the last phase), lighter for others."""
    models = list(results["results"])
    phases = [m for m in models if m != "base"]
    final = final_phase(results) or (phases[-1] if phases else None)
    colors = {"base": BASE_COLOR}
    others = [m for m in phases if m != final]
    for i, m in enumerate(others):
        colors[m] = PHASE_SHADES[i % len(PHASE_SHADES)]
    if final in phases:
        colors[final] = FINAL_COLOR
    return colors


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    """(rows, columns) of a subplot grid for ``n`` panels, at most ``max_cols`` wide."""
    cols = min(max_cols, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def metrics_chart(results: dict, path: Path) -> Path:
    """(a) One subplot per (set, metric): a bar per model with its 95% CI, value printed on the bar."""
    plt = _pyplot()
    panels = [(s, m) for s, meta in results["sets"].items() for m in meta["metrics"]]
    models = list(results["results"])
    colors = model_colors(results)
    final = final_phase(results)
    rows, cols = _grid(len(panels))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), dpi=DPI, layout="constrained")
    axes = list(getattr(axes, "flat", [axes]))
    for ax, (s, m) in zip(axes, panels, strict=False):
        vals, lo, hi = [], [], []
        for model in models:
            r = results["results"][model][s][m]
            vals.append(r["value"])
            lo.append(r["value"] - r["ci_low"] if r["ci_low"] is not None else 0.0)
            hi.append(r["ci_high"] - r["value"] if r["ci_high"] is not None else 0.0)
        x = range(len(models))
        bars = ax.bar(
            x, vals, color=[colors[mo] for mo in models], yerr=[lo, hi], capsize=4, edgecolor="black"
        )
        for bar, v in zip(bars, vals, strict=True):
            # Mid-bar, on a white box: readable for negative values and clear of the whiskers' caps.
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                v / 2,
                f"{v:.3f}",
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
        ax.set_xticks(list(x), [model_label(mo, final) for mo in models], rotation=25, ha="right", fontsize=8)
        ax.set_title(f"{results['sets'][s]['title']}: {m}", fontsize=10)
        ax.set_ylabel(m)
        top = max(v + h for v, h in zip(vals, hi, strict=True))
        bottom = min(v - low for v, low in zip(vals, lo, strict=True))
        ax.set_ylim(min(0.0, bottom * 1.05), max(1.0, top * 1.05))
    for ax in axes[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"Run {results['run']}: held-out medical suite (bars: value, whiskers: 95% bootstrap CI)")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _load_history(phase_dir: Path) -> list[dict] | None:
    """A phase's loss_history.json, or None when it is missing or unreadable (the panel says so)."""
    path = phase_dir / layout.LOSS_HISTORY
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, list) else None


def loss_chart(results: dict, run_dir: Path, path: Path) -> Path:
    """(b) Training (and validation) loss against step, one subplot per phase, from loss_history.json."""
    plt = _pyplot()
    phases = [m for m in results["results"] if m != "base"]
    rows, cols = _grid(len(phases), max_cols=3)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), dpi=DPI, layout="constrained")
    axes = list(getattr(axes, "flat", [axes]))
    colors = model_colors(results)
    for ax, phase in zip(axes, phases, strict=False):
        history = _load_history(Path(run_dir) / phase)
        ax.set_title(phase, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if not history:
            ax.text(0.5, 0.5, f"no {layout.LOSS_HISTORY}", ha="center", va="center", transform=ax.transAxes)
            continue
        for key, style in (("loss", "-"), ("eval_loss", "--")):
            pts = [(e["step"], e[key]) for e in history if isinstance(e, dict) and key in e and "step" in e]
            if pts:
                xs, ys = zip(*sorted(pts), strict=True)
                label = "train loss" if key == "loss" else "validation loss"
                ax.plot(
                    xs,
                    ys,
                    style,
                    marker="o",
                    markersize=3,
                    color=colors.get(phase, "tab:orange"),
                    label=label,
                )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(phases) :]:
        ax.axis("off")
    fig.suptitle(f"Run {results['run']}: training loss per phase")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def deltas_chart(results: dict, path: Path) -> Path:
    """(c) Forest plot per set: each checkpoint's difference from base with its paired 95% CI."""
    plt = _pyplot()
    sets = list(results["sets"])
    phases = list(results["deltas"])
    colors = model_colors(results)
    final = final_phase(results)
    rows, cols = _grid(len(sets), max_cols=3)
    height = max(
        2.8, 0.35 * max(len(phases) * max(len(v["metrics"]) for v in results["sets"].values()), 1) + 1.2
    )
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, height * rows), dpi=DPI, layout="constrained")
    axes = list(getattr(axes, "flat", [axes]))
    for ax, s in zip(axes, sets, strict=False):
        labels, y = [], 0
        for m in results["sets"][s]["metrics"]:
            for phase in phases:
                d = results["deltas"][phase][s][m]
                lo = d["diff"] - d["ci_low"] if d["ci_low"] is not None else 0.0
                hi = d["ci_high"] - d["diff"] if d["ci_high"] is not None else 0.0
                filled = d["significant"] is True
                ax.errorbar(
                    d["diff"],
                    y,
                    xerr=[[lo], [hi]],
                    fmt="o",
                    color=colors[phase],
                    mfc=colors[phase] if filled else "white",
                    mec="black",
                    ecolor="black",
                    capsize=3,
                )
                ax.annotate(
                    f"{d['diff']:+.3f}",
                    (d["diff"], y),
                    xytext=(0, 6),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                )
                labels.append(f"{m} · {model_label(phase, final)}")
                y += 1
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # top-down, with room above and below single rows
        ax.set_title(f"{results['sets'][s]['title']}: Δ vs base", fontsize=10)
        ax.set_xlabel("difference from base (95% paired CI; hollow: the CI includes 0)")
    for ax in axes[len(sets) :]:
        ax.axis("off")
    fig.suptitle(f"Run {results['run']}: change from the base model")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_charts(results: dict, run_dir: Path, out_dir: Path) -> list[Path]:
    """Write the three PNGs into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [metrics_chart(results, out_dir / METRICS_PNG), loss_chart(results, run_dir, out_dir / LOSS_PNG)]
    if results.get("deltas"):
        paths.append(deltas_chart(results, out_dir / DELTAS_PNG))
    return paths
