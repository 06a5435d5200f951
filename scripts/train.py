"""Fine-tune all-mpnet-base-v2 into MPNet-medical, phase by phase, as a recipe says.

Usage (what ``make train RECIPE=cpu`` runs):

accelerate launch --config_file accelerate_config.yaml scripts/train.py --recipe recipes/cpu.yaml --run cpu

Options: ``--set phase2.batch_size=32`` (repeatable) overrides recipe keys; ``--fresh`` wipes outputs/<run>/
first; ``--retrain-from 3`` keeps the finished phases 1-2 and trains phase 3 anew (the recipe may differ in
phase 3 only); ``--output-dir`` puts run folders elsewhere than outputs/. Rerunning the same command resumes:
finished phases are kept, the unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _cli import add_override_argument, with_env_args

from medenc.core.errors import MedencError, fail


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the training; a MedencError exits 2 with its message."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, type=Path, help="recipe YAML, e.g. recipes/cpu.yaml")
    parser.add_argument("--run", required=True, help="run name (a plain name): the folder outputs/<run>/")
    add_override_argument(parser)
    parser.add_argument("--fresh", action="store_true", help="wipe outputs/<run>/ and start over")
    parser.add_argument(
        "--retrain-from",
        type=int,
        choices=(1, 2, 3),
        default=None,
        help="keep the finished phases before N, train N and later anew (the recipe may change there only)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="parent of run folders (default outputs/)"
    )
    args = parser.parse_args(with_env_args(argv, "MEDENC_TRAIN_ARGS"))  # make's TRAIN_ARGS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from medenc.training import run_training
    from medenc.training.recipe import load_recipe

    try:
        recipe = load_recipe(args.recipe, args.overrides)
        run_training(
            recipe,
            args.run,
            recipe_path=args.recipe,
            output_dir=args.output_dir,
            fresh=args.fresh,
            retrain_from=args.retrain_from,
        )
    except MedencError as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
