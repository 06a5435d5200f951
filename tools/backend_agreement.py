"""Whole-suite agreement of an evaluation backend with PyTorch fp32, on one model (docs/evaluation.md).

Not part of the shipped package: the proof behind ``make evaluate``'s backend choice, run once per change of
backend or runtime. It scores one model on every set of the suite twice, with ``torch-fp32`` and with
``--backend``, through the evaluation's own code (embedding cache, scorers, paired bootstrap: both on the same
resampled items), and prints one row per set and metric with the difference; exit 3 when a headline figure
differs by more than ``--tolerance``.

    python tools/backend_agreement.py --backend openvino                    # the base model
    python tools/backend_agreement.py --backend openvino --model outputs/cpu/final --out agreement.json
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from medenc.core.eval_sets import headline_metric
from medenc.core.io import write_json
from medenc.evaluation.backends import BACKENDS, REFERENCE
from medenc.evaluation.cache import EmbeddingCache
from medenc.evaluation.models import model_ref, use_backend
from medenc.evaluation.results import Figures
from medenc.evaluation.scoring import bootstrap_all, score_models
from medenc.evaluation.sets import SETS, default_loader, load_set, select_sets
from medenc.evaluation.suite import DEFAULT_BOOTSTRAP, DEFAULT_MAX_SEQ_LENGTHS, DEFAULT_SEED


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True, choices=[b for b in BACKENDS if b != REFERENCE])
    p.add_argument("--model", type=Path, default=None, help="a model folder (default: the verified base)")
    p.add_argument("--tolerance", type=float, default=0.002, help="largest headline difference allowed")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sets = {name: load_set(default_loader(), name) for name in select_sets(None)}
    fp32 = model_ref(args.model, "cpu")  # named "base": the paired bootstrap's reference
    other = dataclasses.replace(use_backend([fp32], BACKENDS[args.backend], "cpu")[0], name=args.backend)
    cache, raw, seconds = EmbeddingCache(), {}, {}
    for ref, backend in ((fp32, REFERENCE), (other, args.backend)):
        t0 = time.perf_counter()
        scores = score_models([ref], sets, cache, DEFAULT_MAX_SEQ_LENGTHS, BACKENDS[backend].cache_tag())
        raw[ref.name], seconds[backend] = scores.raw[ref.name], round(time.perf_counter() - t0, 1)
    figures = Figures(*bootstrap_all([fp32, other], sets, raw, args.bootstrap, DEFAULT_SEED), "agreement")
    rows, worst = [], 0.0
    for name in sets:
        head = headline_metric(name, list(SETS[name].metrics))
        for metric in figures.metrics("base")[name]:
            diff = figures.delta(args.backend, name, metric)
            row = {"set": name, "metric": metric, "headline": metric == head}
            row[REFERENCE] = figures.cell("base", name, metric).value
            row[args.backend] = figures.cell(args.backend, name, metric).value
            row["diff"] = dataclasses.asdict(diff)
            rows.append(row)
            worst = max(worst, abs(diff.diff)) if metric == head else worst
    print(f"| set | metric | {REFERENCE} | {args.backend} | Δ [95% CI] |\n|---|---|---|---|---|")
    for r in rows:
        d = r["diff"]
        mark = "" if r["headline"] else " (other)"
        print(
            f"| {r['set']} | {r['metric']}{mark} | {r[REFERENCE]:.4f} | {r[args.backend]:.4f} | "
            f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] |"
        )
    print(f"\nlargest headline difference {worst:.4f} (tolerance {args.tolerance}); seconds {seconds}")
    if args.out:
        model = str(args.model) if args.model else "base"
        write_json(args.out, {"model": model, "backend": args.backend, "rows": rows, "seconds": seconds,
                              "largest_headline_diff": worst, "tolerance": args.tolerance})  # fmt: skip
    return 0 if worst <= args.tolerance else 3


if __name__ == "__main__":
    sys.exit(main())
