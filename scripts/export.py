"""Build the ONNX and OpenVINO exports of a run's final model and measure them against PyTorch.

    python scripts/export.py --run cpu --measure              # exports + agreement, speed, suite figures
    python scripts/export.py --run cpu --measure --no-suite   # agreement and speed only (minutes)
    python scripts/export.py --model-dir DIR --output OUT --measure --no-suite   # any model folder

With --run, the exports go to outputs/<run>/exports/ (what `make release` verifies and ships; it builds
none) and the figures into the run's results.json under `exports` (the card's "Exports" table); without
--measure, exports that verify are kept as they are. With --model-dir they go to OUT/ and
OUT/measurement.json. Reads the suite's texts from PREPARED_DIR. Thin: the work is in medenc.export.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from _cli import with_env_args

from medenc.core.errors import MedencError, fail
from medenc.core.io import write_json
from medenc.core.paths import run_folder
from medenc.export import build_exports, ensure_exports, measure_model, measure_run
from medenc.export.measure import DEFAULT_SAMPLE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Which model, where the exports go, and what to measure."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", help="run name: exports of outputs/<run>/final/ ($OUTPUTS_DIR)")
    who.add_argument("--model-dir", type=Path, help="a sentence-transformers model folder (needs --output)")
    p.add_argument("--output", type=Path, help="with --model-dir: the folder the exports are written to")
    p.add_argument("--measure", action="store_true", help="measure agreement and speed (and the suite)")
    p.add_argument("--no-suite", action="store_true", help="skip the suite's figures of the int8 export")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="suite texts for agreement and speed")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the suite's figures")
    p.add_argument("--rebuild", action="store_true", help="build the exports again even if they verify")
    args = p.parse_args(with_env_args(argv, "MEDENC_EXPORT_ARGS"))
    if args.model_dir and not args.output:
        p.error("--model-dir needs --output")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build (or verify) the exports, then measure them if asked; a MedencError exits 2."""
    args = parse_args(argv)
    # The exporters and the quantizer log every graph rewrite at INFO: only this package's steps are shown.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medenc").setLevel(logging.INFO)
    options = {"sample": args.sample, "suite": not args.no_suite, "bootstrap": args.bootstrap}
    try:
        if args.run:
            run_dir = run_folder(args.run)
            if args.measure:
                block = measure_run(run_dir, rebuild=args.rebuild, **options)
            else:
                print(f"exports in {ensure_exports(run_dir, rebuild=args.rebuild)}")
                return 0
        else:
            build_exports(args.model_dir, args.output)
            if not args.measure:
                print(f"exports in {args.output}")
                return 0
            block = measure_model(args.model_dir, args.output, **options)
            write_json(args.output / "measurement.json", block)
    except MedencError as exc:
        return fail(exc)
    print(json.dumps(block["variants"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
