"""The ablation: what each phase, loss and negative source contributes, by the project's own evaluation.

Every variant is the CPU recipe with a few ``--set`` overrides, trained and evaluated by the ordinary
``make train evaluate`` (so nothing here is a second pipeline). Phase contributions come for free from the
main run, whose every phase is evaluated; the other variants retrain only what differs (``init_from`` starts
phase-3 variants from the main run's phase-2 folder).

    python -m medenc.ablation plan          # the commands, one per variant
    python -m medenc.ablation run           # run the variants whose results are missing, in order
    python -m medenc.ablation table         # write results/ablation.md from the runs' results.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from medenc.errors import RunError
from medenc.layout import EVAL_DIR, PHASE_DIRS
from medenc.paths import PROJECT_ROOT, outputs_dir

MAIN_RUN = "cpu"
# PubMedQA is left out of the variants: it is the costliest set to encode, and near its ceiling for every
# model (a transfer check, reported for the main run). The discriminating sets remain.
SETS = "biosses,stsb,rqe,medquad,triplets"
COLUMNS = (
    ("biosses", "spearman", "BIOSSES ρ"),
    ("stsb", "spearman", "STS-B ρ"),
    ("rqe", "ap", "RQE AP"),
    ("medquad", "ndcg@10", "MedQuAD nDCG@10"),
    ("triplets", "accuracy", "Triplet acc."),
)


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a run (trained with ``overrides`` unless it is the main run) and a model."""

    label: str
    run: str
    model: str
    overrides: tuple[str, ...] = field(default=())

    def train_command(self) -> list[str]:
        return [
            "make",
            "train",
            "evaluate",
            "RECIPE=cpu",
            f"RUN={self.run}",
            f"TRAIN_ARGS={' '.join(f'--set {o}' for o in self.overrides)}",
            f"EVAL_ARGS=--sets {SETS}",
        ]

    def shown(self) -> str:
        if self.run == MAIN_RUN:
            return f"make train evaluate RECIPE=cpu  # main run, {self.model}"
        sets = " ".join(f"--set {o}" for o in self.overrides)
        return f'make train evaluate RECIPE=cpu RUN={self.run} TRAIN_ARGS="{sets}" EVAL_ARGS="--sets {SETS}"'


_P2 = f"outputs/{MAIN_RUN}/{PHASE_DIRS[2]}"
VARIANTS: tuple[Variant, ...] = (
    Variant("phase 1 (CosineSimilarityLoss)", MAIN_RUN, PHASE_DIRS[1]),
    Variant("phases 1+2", MAIN_RUN, PHASE_DIRS[2]),
    Variant("phases 1+2+3, mined + curated negatives (cpu recipe)", MAIN_RUN, PHASE_DIRS[3]),
    Variant(
        "phase 1 with CoSENTLoss",
        "abl-cosent",
        PHASE_DIRS[1],
        ("phase1.loss=cosent", "phase2.enabled=false", "phase3.enabled=false"),
    ),
    Variant(
        "phases 1+2, then phase 3 with curated negatives only",
        "abl-p3-curated",
        PHASE_DIRS[3],
        (f"init_from={_P2}", "phase1.enabled=false", "phase2.enabled=false", "phase3.negatives=curated"),
    ),
    Variant(
        "phases 1+2, then phase 3 with mined negatives only",
        "abl-p3-mined",
        PHASE_DIRS[3],
        (f"init_from={_P2}", "phase1.enabled=false", "phase2.enabled=false", "phase3.negatives=mined"),
    ),
    Variant(
        "phase 2 alone (no STS-B phase 1)",
        "abl-no-p1",
        PHASE_DIRS[2],
        ("phase1.enabled=false", "phase3.enabled=false"),
    ),
)


def _results(run: str) -> dict | None:
    path = outputs_dir() / run / EVAL_DIR / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _cell(results: dict, model: str, set_name: str, metric: str) -> str:
    try:
        value = results["results"][model][set_name][metric]["value"]
        d = results["deltas"][model][set_name][metric]
    except KeyError:
        return "—"
    mark = "" if d["significant"] else " †"
    return f"{value:.3f} ({d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]{mark})"


def table() -> str:
    """The ablation table as Markdown, from whatever variants have results."""
    main = _results(MAIN_RUN)
    if main is None:
        raise RunError(f"{outputs_dir() / MAIN_RUN}: the main run has no results; run `make train evaluate`")
    header = "| variant | " + " | ".join(c[2] for c in COLUMNS) + " |"
    lines = [header, "|---|" + "---|" * len(COLUMNS)]
    lines.append(
        "| base (all-mpnet-base-v2) | "
        + " | ".join(
            f"{main['results']['base'][s][m]['value']:.3f}" if s in main["results"]["base"] else "—"
            for s, m, _ in COLUMNS
        )
        + " |"
    )
    missing = []
    for v in VARIANTS:
        res = _results(v.run)
        if res is None or v.model not in res["results"]:
            missing.append(v)
            continue
        lines.append(f"| {v.label} | " + " | ".join(_cell(res, v.model, s, m) for s, m, _ in COLUMNS) + " |")
    out = [
        "# Ablation",
        "",
        "Each cell: the metric, then the difference from the base model with its paired 95% bootstrap CI; "
        "† marks a difference whose CI includes zero (not significant). Every variant is `recipes/cpu.yaml` "
        "with the overrides in its command, on this project's 2-core CPU machine; base figures come from the "
        "same evaluation code and cache.",
        "",
        *lines,
        "",
        "## Commands",
        "",
        *[f"- {v.label}: `{v.shown()}`" for v in VARIANTS],
        "",
        "Rebuild this file: `python -m medenc.ablation table`.",
    ]
    if missing:
        out += ["", "Not run yet: " + "; ".join(v.label for v in missing) + "."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The ablation of recipes/cpu.yaml.")
    ap.add_argument("action", choices=("plan", "run", "table"))
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "ablation.md")
    args = ap.parse_args(argv)
    if args.action == "plan":
        print("\n".join(v.shown() for v in VARIANTS))
        return 0
    if args.action == "run":
        for v in VARIANTS:
            res = _results(v.run)
            if v.run != MAIN_RUN and (res is None or v.model not in res["results"]):
                print(f"== {v.label}: {v.shown()}", flush=True)
                subprocess.run(v.train_command(), cwd=PROJECT_ROOT, check=True)
    try:
        text = table()
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
