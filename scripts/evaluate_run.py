"""Score the base model and every phase checkpoint of a run on the held-out medical suite.

    accelerate launch --config_file accelerate_config.yaml scripts/evaluate_run.py --run cpu

Writes outputs/<run>/eval/results.json (docs/results_schema.md), results.md and charts. Embeddings are cached
under $MEDENC_CACHE/embeddings, so a rerun re-encodes only what changed (--no-cache to bypass).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from medenc.core.errors import MedencError
from medenc.evaluation import SETS, run_evaluation
from medenc.core.paths import outputs_dir

# Python puts this script's folder first on sys.path, where this very file would shadow the `evaluate`
# library that medenc.evaluation imports when it saves the run record.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run name under outputs/ (or a path to a run folder)")
    p.add_argument("--output-dir", type=Path, default=None, help="default: <run>/eval")
    p.add_argument("--sets", default=None, help=f"comma-separated subset of {','.join(SETS)} (default: all)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no CIs)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast (opt-in: measure against fp32 first)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Evaluation is cheap next to training and its results are one file: under `accelerate launch` with
    # several processes only the main one scores, the others exit.
    from accelerate import PartialState

    state = PartialState()
    if not state.is_main_process:
        return 0
    run_dir = Path(args.run) if Path(args.run).is_dir() and os.sep in args.run else outputs_dir() / args.run
    sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
    try:
        doc = run_evaluation(
            run_dir,
            bootstrap=args.bootstrap,
            use_cache=not args.no_cache,
            sets=sets,
            output_dir=args.output_dir,
            bf16=args.bf16,
            device=str(state.device),
        )
    except MedencError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.output_dir or run_dir / "eval"
    print(f"wrote {out}/results.json, results.md and {len(doc.get('charts', []))} charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
