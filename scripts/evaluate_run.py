"""Score the base model and every phase checkpoint of a run on the held-out medical suite.

    accelerate launch --config_file accelerate_config.yaml scripts/evaluate_run.py --run cpu

Writes outputs/<run>/eval/results.json (docs/results_schema.md), results.md and charts. Embeddings are cached
under $MEDENC_CACHE/embeddings, so a rerun re-encodes only what changed (--no-cache to bypass). Thin: the work
is in medenc.evaluation.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _cli import with_env_args

from medenc.core.errors import MedencError, fail
from medenc.evaluation import SETS, evaluate_run
from medenc.evaluation.backends import AUTO, CHOICES
from medenc.evaluation.suite import DEFAULT_BOOTSTRAP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: which run, where to write, which sets, how many resamples, cache and backend."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--run", required=True, help="run name: the folder outputs/<run>/ ($OUTPUTS_DIR/<run>/ if set)"
    )
    p.add_argument("--output-dir", type=Path, default=None, help="default: <run>/eval")
    p.add_argument("--sets", default=None, help=f"comma-separated subset of {','.join(SETS)} (default: all)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples (0: no CIs)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument(
        "--backend",
        choices=CHOICES,
        default=AUTO,
        help="how texts are encoded: auto (default) measures the candidates on this machine and takes the "
        "fastest whose embeddings agree with torch-fp32 (docs/evaluation.md); a name forces that backend",
    )
    p.add_argument(
        "--remeasure-backend",
        action="store_true",
        help="measure the backends again instead of reusing this machine's earlier measurement",
    )
    p.add_argument(
        "--base-model",
        type=Path,
        default=None,
        help="a model folder scored as the base instead of the verified all-mpnet-base-v2 (GPU timing of a "
        "random-weight run, where the real weights cannot travel)",
    )
    return p.parse_args(with_env_args(argv, "MEDENC_EVAL_ARGS"))  # make's EVAL_ARGS


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and score the run; a MedencError exits 2 with its message."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
    try:
        written = evaluate_run(
            args.run,
            output_dir=args.output_dir,
            sets=sets,
            bootstrap=args.bootstrap,
            use_cache=not args.no_cache,
            backend=args.backend,
            remeasure_backend=args.remeasure_backend,
            base_path=args.base_model,
        )
    except MedencError as exc:
        return fail(exc)
    if written is not None:  # None: not the main process, which did the work
        out_dir, results = written
        print(f"wrote {out_dir}/results.json, results.md and {len(results.charts)} charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
