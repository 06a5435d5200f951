"""Turn a list of evaluated runs into an ablation table (Markdown), as in results/ablation.md.

Not part of the shipped package: a small lab tool over the records that ``make evaluate`` writes.

    python tools/ablation_table.py "phase 1=cpu:phase-1" "phases 1+2+3=cpu:final" \
        "CoSENT in phase 1=abl-cosent:phase-1"

Each argument is ``LABEL=RUN[:MODEL]`` (MODEL defaults to ``final``, the model ``final/`` copies; a phase as
its run's results.json names it: ``phase-1-cosine`` in runs evaluated before the phase folders were named by
number); the base row comes from the first run.
Each cell is the figure, then its paired difference from the base model with the 95% CI, marked where the CI
includes zero. ``--columns`` picks the (set, metric) pairs.
"""

from __future__ import annotations

import argparse
import sys

from medenc.core.errors import RunError
from medenc.core.io import fmt, fmt_delta
from medenc.core.layout import EVAL_DIR, RESULTS_FILE
from medenc.core.paths import run_folder
from medenc.evaluation.results import Results

COLUMNS = "biosses:spearman,stsb:spearman,rqe:ap,medquad:ndcg@10,triplets:accuracy,terms:ndcg@10"


def _results(run: str) -> Results:
    path = run_folder(run) / EVAL_DIR / RESULTS_FILE
    if not path.is_file():
        sys.exit(f"{path}: no results; run `make evaluate RUN={run}` first")
    try:
        return Results.load(path)
    except RunError as exc:
        sys.exit(str(exc))


def _cell(results: Results, model: str, set_name: str, metric: str) -> str:
    cell = results.find_cell(model, set_name, metric)
    if cell is None:
        return "—"
    delta = results.find_delta(model, set_name, metric)
    value = fmt(cell.value, digits=3)
    return f"{value} ({fmt_delta(delta, digits=3)})" if delta else value


def table(variants: list[tuple[str, str, str]], columns: list[tuple[str, str]]) -> str:
    """The Markdown table: a base row, then one row per (label, run, model)."""
    runs = {run: _results(run) for _, run, _ in variants}
    first = runs[variants[0][1]]
    lines = [
        "| variant | " + " | ".join(f"{s} {m}" for s, m in columns) + " |",
        "|---|" + "---|" * len(columns),
        "| base | " + " | ".join(_cell(first, "base", s, m) for s, m in columns) + " |",
    ]
    for label, run, model in variants:
        lines.append(f"| {label} | " + " | ".join(_cell(runs[run], model, s, m) for s, m in columns) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="LABEL=RUN[:MODEL]")
    ap.add_argument("--columns", default=COLUMNS, help=f"set:metric pairs (default {COLUMNS})")
    args = ap.parse_args(argv)
    variants = []
    for text in args.variants:
        label, _, ref = text.rpartition("=")
        run, _, model = ref.partition(":")
        if not label or not run:
            ap.error(f"{text!r}: expected LABEL=RUN[:MODEL]")
        variants.append((label, run, model or "final"))
    columns = [tuple(c.split(":", 1)) for c in args.columns.split(",")]
    print(table(variants, columns), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
