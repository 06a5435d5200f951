"""The ablation: what each phase, loss and negative source contributes, by the project's own evaluation.

The tuning happens in rounds (:data:`ROUNDS`): each round has a recipe, its main run (``make train evaluate
RECIPE=<recipe>``, whose every phase is evaluated, so phase contributions come for free) and variants: the
recipe with a few ``--set`` overrides, trained and evaluated by the ordinary ``make train evaluate`` (nothing
here is a second pipeline). Variants retrain only what differs: ``init_from`` starts them from a main run's
phase folder.

    python -m medenc.ablation plan          # the commands, one per variant, round by round
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

# PubMedQA is left out of the variants: it is the costliest set to encode, and near its ceiling for every
# model (a transfer check, reported for the main run). The discriminating sets remain. The terms set came
# with round 3: earlier runs trained on abbreviations it holds out, so they are not scored on it.
SETS = "biosses,stsb,rqe,medquad,triplets"
SETS_WITH_TERMS = SETS + ",terms"
COLUMNS = (
    ("biosses", "spearman", "BIOSSES ρ"),
    ("stsb", "spearman", "STS-B ρ"),
    ("rqe", "ap", "RQE AP"),
    ("medquad", "ndcg@10", "MedQuAD nDCG@10"),
    ("triplets", "accuracy", "Triplet acc."),
    ("terms", "ndcg@10", "Terms nDCG@10"),
)


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a run (trained with ``overrides`` unless it is the main run) and a model."""

    label: str
    run: str
    model: str
    overrides: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Round:
    """One round of tuning: a recipe, its main run (every phase evaluated) and variants of it."""

    title: str
    recipe: str  # recipes/<recipe>.yaml
    intro: str
    variants: tuple[Variant, ...]
    sets: str = SETS  # the evaluation sets of its variants

    @property
    def main_run(self) -> str:
        return self.recipe  # `make train evaluate RECIPE=x` names its run x

    def train_command(self, v: Variant) -> list[str]:
        return [
            "make",
            "train",
            "evaluate",
            f"RECIPE={self.recipe}",
            f"RUN={v.run}",
            f"TRAIN_ARGS={' '.join(f'--set {o}' for o in v.overrides)}",
            f"EVAL_ARGS=--sets {self.sets}",
        ]

    def shown(self, v: Variant) -> str:
        if v.run == self.main_run:
            return f"make train evaluate RECIPE={self.recipe}  # main run, {v.model}"
        sets = " ".join(f"--set {o}" for o in v.overrides)
        head = f"make train evaluate RECIPE={self.recipe} RUN={v.run}"
        return f'{head} TRAIN_ARGS="{sets}" EVAL_ARGS="--sets {self.sets}"'


def _main_phases(run: str, first: str) -> tuple[Variant, ...]:
    return (
        Variant(f"phase 1 ({first})", run, PHASE_DIRS[1]),
        Variant("phases 1+2", run, PHASE_DIRS[2]),
        Variant("phases 1+2+3, mined + curated negatives (the recipe)", run, PHASE_DIRS[3]),
    )


def _from(run: str, phase: int) -> str:
    return f"init_from=outputs/{run}/{PHASE_DIRS[phase]}"


_NO_P1_P2 = ("phase1.enabled=false", "phase2.enabled=false")
_SHORT = (
    _from("cpu", 1),
    "phase1.enabled=false",
    "phase2.sources.medquad_synonym=500",
    "phase2.sources.medical_abbreviations=500",
)
_P2_ONLY = ("phase1.enabled=false", "phase3.enabled=false")

ROUNDS: tuple[Round, ...] = (
    Round(
        "Round 1: the first CPU recipe (fp32, 1800 phase-2 pairs)",
        "cpu-v1",
        "Each phase, the phase-1 loss and the phase-3 negatives, one at a time. Phase-3 variants start from "
        "the main run's phase-2 model. These runs were made as `RECIPE=cpu` before that recipe was retuned; "
        "`recipes/cpu-v1.yaml` is that file unchanged (the graded set has gained RQE rows since, which this "
        "recipe does not select, so its training rows are the same).",
        (
            *_main_phases("cpu-v1", "CosineSimilarityLoss on STS-B"),
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
                (_from("cpu-v1", 2), *_NO_P1_P2, "phase3.negatives=curated"),
            ),
            Variant(
                "phases 1+2, then phase 3 with mined negatives only",
                "abl-p3-mined",
                PHASE_DIRS[3],
                (_from("cpu-v1", 2), *_NO_P1_P2, "phase3.negatives=mined"),
            ),
            Variant("phase 2 alone (no STS-B phase 1)", "abl-no-p1", PHASE_DIRS[2], _P2_ONLY),
        ),
    ),
    Round(
        "Round 2: the bf16 recipe (4800 phase-2 pairs), and the data mixture",
        "cpu-r2",
        "bf16 autocast trains about 3x faster than fp32 at equal loss on this CPU, so round 2 carries "
        "about 3x the data. Mixture variants change one data choice; phase-2 variants start from the main "
        "run's phase-1 model and compare with its phases 1+2 row. These runs were made as `RECIPE=cpu` (and "
        "`init_from=outputs/cpu/...`) before round 3 retuned that recipe; `recipes/cpu-r2.yaml` is that file "
        "unchanged but for a later key with its old default (`attention: eager`), and the main run's folder "
        "is now outputs/cpu-r2.",
        (
            *_main_phases("cpu-r2", "CosineSimilarityLoss on STS-B"),
            Variant(
                # Evaluated on BIOSSES, STS-B and RQE only (a quick pilot): its MedQuAD cells are empty.
                "phase 1: CoSENTLoss on STS-B 1000 + RQE 1000 (labels as 1/0)",
                "abl2-p1-cosent-rqe",
                PHASE_DIRS[1],
                (
                    "phase1.loss=cosent",
                    "phase1.sources.stsb=1000",
                    "phase1.sources.rqe=1000",
                    "phase1.group_by_length=false",
                    "phase2.enabled=false",
                    "phase3.enabled=false",
                ),
            ),
            Variant(
                "phases 1+2, phase 2 without the short pairs (synonyms, abbreviations)",
                "abl2-p2-no-short",
                PHASE_DIRS[2],
                (
                    _from("cpu-r2", 1),
                    *_P2_ONLY,
                    "phase2.sources.medquad_synonym=0",
                    "phase2.sources.medical_abbreviations=0",
                ),
            ),
            Variant(
                # Phase 3 mines over the phase-2 selection, so the short pairs leave the mining anchors too.
                "phases 1+2+3, phase 2 and mining without the short pairs",
                "abl2-no-short-p3",
                PHASE_DIRS[3],
                (
                    _from("abl2-p2-no-short", 2),
                    *_NO_P1_P2,
                    "phase2.sources.medquad_synonym=0",
                    "phase2.sources.medical_abbreviations=0",
                ),
            ),
            Variant(
                "phases 1+2, phase 2 on MedQuAD question-answer pairs only (same 4800 rows)",
                "abl2-p2-qa-only",
                PHASE_DIRS[2],
                (
                    _from("cpu-r2", 1),
                    *_P2_ONLY,
                    "phase2.sources.medquad_qa=4800",
                    "phase2.sources.meqsum=0",
                    "phase2.sources.rqe=0",
                    "phase2.sources.medquad_synonym=0",
                    "phase2.sources.medical_abbreviations=0",
                ),
            ),
        ),
    ),
    Round(
        "Round 3: recipes/cpu.yaml, phase 2 and mining without the short pairs",
        "cpu",
        "Round 2's best mixture as the recipe: phase 2 (and so the phase-3 mining anchors) without the "
        "MedQuAD synonym and abbreviation pairs, 3800 pairs; every other choice as in round 2. Its main run "
        "is the one published in results/cpu/. From this round on the data hold out a terms test set (10% of "
        "the abbreviations, the synonyms of the held-out MedQuAD documents), which asks the question round 2 "
        "could not: what do the short pairs do for abbreviations and synonyms? The short-pairs variant "
        "restores round 2's 500 + 500 of them (drawn from the remaining 90% of abbreviations).",
        (
            *_main_phases("cpu", "CosineSimilarityLoss on STS-B"),
            Variant("phases 1+2, with the short pairs", "abl3-short", PHASE_DIRS[2], _SHORT),
            Variant("phases 1+2+3, with the short pairs", "abl3-short", PHASE_DIRS[3], _SHORT),
        ),
        SETS_WITH_TERMS,
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


def _missing(rnd: Round) -> list[Variant]:
    out = []
    for v in rnd.variants:
        res = _results(v.run)
        if res is None or v.model not in res["results"]:
            out.append(v)
    return out


def _round_table(rnd: Round) -> list[str]:
    main = _results(rnd.main_run)
    if main is None:
        raise RunError(
            f"{outputs_dir() / rnd.main_run}: the main run has no results; run "
            f"`make train evaluate RECIPE={rnd.recipe}`"
        )
    base = main["results"]["base"]
    lines = [
        f"## {rnd.title}",
        "",
        rnd.intro,
        "",
        "| variant | " + " | ".join(c[2] for c in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
        "| base (all-mpnet-base-v2) | "
        + " | ".join(f"{base[s][m]['value']:.3f}" if s in base else "—" for s, m, _ in COLUMNS)
        + " |",
    ]
    missing = _missing(rnd)
    for v in rnd.variants:
        if v not in missing:
            res = _results(v.run)
            assert res is not None
            lines.append(
                f"| {v.label} | " + " | ".join(_cell(res, v.model, s, m) for s, m, _ in COLUMNS) + " |"
            )
    lines += ["", "Commands:", "", *[f"- {v.label}: `{rnd.shown(v)}`" for v in rnd.variants]]
    if missing:
        lines += ["", "Not run yet: " + "; ".join(v.label for v in missing) + "."]
    return lines


def table() -> str:
    """The ablation as Markdown, one table per round, from whatever variants have results."""
    out = [
        "# Ablation",
        "",
        "Each cell: the metric, then the difference from the base model with its paired 95% bootstrap CI; "
        "† marks a difference whose CI includes zero (not significant). Every variant is its round's recipe "
        "with the overrides in its command, on this project's 2-core CPU machine; base figures come from the "
        "same evaluation code and cache. — : not evaluated on that set.",
    ]
    for rnd in ROUNDS:
        out += ["", *_round_table(rnd)]
    out += ["", "Rebuild this file: `python -m medenc.ablation table`."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The ablation of recipes/cpu.yaml.")
    ap.add_argument("action", choices=("plan", "run", "table"))
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "ablation.md")
    args = ap.parse_args(argv)
    if args.action == "plan":
        print("\n".join(rnd.shown(v) for rnd in ROUNDS for v in rnd.variants))
        return 0
    if args.action == "run":
        for rnd in ROUNDS:
            for v in _missing(rnd):
                if v.run != rnd.main_run:
                    print(f"== {v.label}: {rnd.shown(v)}", flush=True)
                    subprocess.run(rnd.train_command(v), cwd=PROJECT_ROOT, check=True)
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
