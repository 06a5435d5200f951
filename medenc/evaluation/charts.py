"""Charts of an evaluation: metric bars with CIs, each phase's loss curve, and a forest plot of Δ vs base.

Matplotlib with the Agg backend (no display needed). Figures use a fixed size and constrained layout rather
than ``bbox_inches="tight"``, so every PNG has a predictable size (figsize × dpi) that tests can check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medenc.core import layout
from medenc.evaluation.results import Results, model_label

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


def model_colors(results: Results) -> dict[str, str]:
    """Blue for base, tab:orange for the released model (``Results.released``), lighter for the others."""
    phases = [m for m in results.scored if m != "base"]
    final = results.released
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


@contextmanager
def _figure(path: Path, n: int, max_cols: int, panel: tuple[float, float], title: str) -> Iterator[list]:
    """A grid of ``n`` panels of ``panel`` inches each: yields their axes, then blanks the grid's spare
    cells, titles the figure and saves it to ``path`` at ``DPI`` (the same steps for every chart)."""
    plt = _pyplot()
    rows, cols = _grid(n, max_cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel[0] * cols, panel[1] * rows), dpi=DPI, layout="constrained"
    )
    axes = list(getattr(axes, "flat", [axes]))
    try:
        yield axes[:n]
        for ax in axes[n:]:
            ax.axis("off")
        fig.suptitle(title)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)


def _bar_panel(ax, results: Results, s: str, m: str, colors: dict[str, str]) -> None:
    """One (set, metric) panel: a bar per model with its 95% CI, value printed on the bar."""
    models = results.scored
    vals, lo, hi = [], [], []
    for model in models:
        r = results.figures.cell(model, s, m)
        vals.append(r.value)
        lo.append(r.value - r.ci_low if r.ci_low is not None else 0.0)
        hi.append(r.ci_high - r.value if r.ci_high is not None else 0.0)
    x = range(len(models))
    bars = ax.bar(x, vals, color=[colors[mo] for mo in models], yerr=[lo, hi], capsize=4, edgecolor="black")
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
    labels = [model_label(mo, results.final) for mo in models]
    ax.set_xticks(list(x), labels, rotation=25, ha="right", fontsize=8)
    ax.set_title(f"{results.sets[s].title}: {m}", fontsize=10)
    ax.set_ylabel(m)
    top = max(v + h for v, h in zip(vals, hi, strict=True))
    bottom = min(v - low for v, low in zip(vals, lo, strict=True))
    ax.set_ylim(min(0.0, bottom * 1.05), max(1.0, top * 1.05))


def metrics_chart(results: Results, path: Path) -> Path:
    """(a) One subplot per (set, metric): a bar per model with its 95% CI, value printed on the bar."""
    panels = [(s, m) for s, info in results.sets.items() for m in info.metrics]
    colors = model_colors(results)
    title = f"Run {results.run}: held-out medical suite (bars: value, whiskers: 95% bootstrap CI)"
    with _figure(path, len(panels), 4, (4.2, 3.8), title) as axes:
        for ax, (s, m) in zip(axes, panels, strict=True):
            _bar_panel(ax, results, s, m, colors)
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


def _loss_panel(ax, history: list[dict] | None, phase: str, color: str) -> None:
    """One phase's panel: train and validation loss per step, or a note that there is no history."""
    ax.set_title(phase, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if not history:
        ax.text(0.5, 0.5, f"no {layout.LOSS_HISTORY}", ha="center", va="center", transform=ax.transAxes)
        return
    for key, style in (("loss", "-"), ("eval_loss", "--")):
        pts = [(e["step"], e[key]) for e in history if isinstance(e, dict) and key in e and "step" in e]
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            label = "train loss" if key == "loss" else "validation loss"
            ax.plot(xs, ys, style, marker="o", markersize=3, color=color, label=label)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def loss_chart(results: Results, run_dir: Path, path: Path) -> Path:
    """(b) Training (and validation) loss against step, one subplot per phase, from loss_history.json."""
    phases = [m for m in results.scored if m != "base"]
    colors = model_colors(results)
    with _figure(path, len(phases), 3, (4.8, 3.6), f"Run {results.run}: training loss per phase") as axes:
        for ax, phase in zip(axes, phases, strict=True):
            history = _load_history(Path(run_dir) / phase)
            _loss_panel(ax, history, phase, colors.get(phase, "tab:orange"))
    return path


def _delta_panel(ax, results: Results, s: str, colors: dict[str, str]) -> None:
    """One set's forest plot: a row per (metric, model), the difference from base with its paired CI."""
    labels, y = [], 0
    for m in results.sets[s].metrics:
        for phase in results.figures.compared:
            d = results.figures.delta(phase, s, m)
            lo = d.diff - d.ci_low if d.ci_low is not None else 0.0
            hi = d.ci_high - d.diff if d.ci_high is not None else 0.0
            filled = d.significant is True
            ax.errorbar(
                d.diff,
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
                f"{d.diff:+.3f}",
                (d.diff, y),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
            labels.append(f"{m} · {model_label(phase, results.final)}")
            y += 1
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # top-down, with room above and below single rows
    ax.set_title(f"{results.sets[s].title}: Δ vs base", fontsize=10)
    ax.set_xlabel("difference from base (95% paired CI; hollow: the CI includes 0)")


def deltas_chart(results: Results, path: Path) -> Path:
    """(c) Forest plot per set: each checkpoint's difference from base with its paired 95% CI."""
    sets = results.sets
    rows = len(results.figures.compared) * max(len(info.metrics) for info in sets.values())
    height = max(2.8, 0.35 * max(rows, 1) + 1.2)
    colors = model_colors(results)
    with _figure(path, len(sets), 3, (5.2, height), f"Run {results.run}: change from the base model") as axes:
        for ax, s in zip(axes, sets, strict=True):
            _delta_panel(ax, results, s, colors)
    return path


def write_charts(results: Results, run_dir: Path, out_dir: Path) -> list[Path]:
    """Write the three PNGs into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [metrics_chart(results, out_dir / METRICS_PNG), loss_chart(results, run_dir, out_dir / LOSS_PNG)]
    if results.figures.compared:
        paths.append(deltas_chart(results, out_dir / DELTAS_PNG))
    return paths
