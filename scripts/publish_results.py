"""Publish a run's records (results, charts, card, recipe, run.json, manifest, log; no weights) to results/.

Usage (what ``make results RUN=cpu LOG=run.txt`` runs):

    python scripts/publish_results.py --run cpu --command "make train evaluate release RECIPE=cpu RUN=cpu" \\
        --log run.txt
    python scripts/publish_results.py --run cpu --rerender-card org/mpnet-medical  # only the card, again

``results/<run>/`` is replaced as a whole, and its README says which quality targets the run meets. Exit
codes (medenc.core.errors): 0 published, every target met; 3 published, a target missed; 2 a user error
(the message names the fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medenc.core.errors import EXIT_CHECK_FAILED, MedencError, fail
from medenc.core.paths import PROJECT_ROOT, check_run_name
from medenc.release.publish import missed_targets, publish, rerender_card


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: which run, where to, the command and log to record, or only the card again."""
    ap = argparse.ArgumentParser(
        description="Publish a run's records into results/<run>/, check its targets."
    )
    ap.add_argument("--run", required=True, help="run name: the folder outputs/<run>/ ($OUTPUTS_DIR)")
    ap.add_argument("--dest", type=Path, default=None, help="default: results/<run>")
    ap.add_argument("--command", default=None, help="the command that produced the run (recorded)")
    ap.add_argument("--log", type=Path, default=None, help="that command's console output, to keep")
    ap.add_argument(
        "--rerender-card",
        metavar="REPO_ID",
        help="only render results/<run>/model_card.md again from the published records",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Publish outputs/<run>/ into results/<run>/ (``make results``) and say whether its targets are met."""
    args = parse_args(argv)
    try:
        # results/<run> is replaced as a whole: the name must be a plain one before it makes a path.
        run = check_run_name(args.run)
        dest = args.dest or PROJECT_ROOT / "results" / run
        if args.rerender_card:
            print(rerender_card(dest, args.rerender_card))
            return 0
        command = args.command or f"make train evaluate release RECIPE={run}"
        publish(run, dest, command, args.log)
        missed = missed_targets(dest)
    except MedencError as exc:
        return fail(exc)
    print((dest / "README.md").read_text(encoding="utf-8"))
    if missed:
        print(f"published {dest}; quality targets not met: {', '.join(missed)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
