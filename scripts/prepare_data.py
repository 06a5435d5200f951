"""Prepare every training, validation and test set from the raw sources.

Usage::

    python scripts/prepare_data.py [--leakage-threshold 0.5] [--out data/prepared] [--accept-upstream]
    python scripts/prepare_data.py --print-pins

Reads ``$DATA_DIR`` (default ``../shared/data``), writes ``$PREPARED_DIR`` (default ``data/prepared``), prints
the rows per split/set/source and the leakage summary; exits 2 with the message on bad data or leakage.
A raw file that differs from its pinned sha256 (each source module's ``pins``, :mod:`medenc.data.pins`) is
bad data, unless ``--accept-upstream`` (``make data DATA_ARGS=--accept-upstream``) accepts it on purpose: the
manifest then records it under ``upstream_accepted``. ``--print-pins`` prints the pins of the raw files as
they are now (to paste into the source modules after a deliberate upstream update) and writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from medenc.core.errors import MedencError, fail


def _threshold(text: str) -> float:
    """A leakage threshold: a number from 0 to 1. NaN or 2 once passed here and failed after the data was
    read and filtered (half a minute in), with a traceback."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails it too
        raise argparse.ArgumentTypeError(
            f"expected a number from 0 to 1 (--leakage-threshold or MEDENC_LEAKAGE_THRESHOLD), "
            f"found {text[:40]!r}"
        )
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (the threshold defaults to $MEDENC_LEAKAGE_THRESHOLD, else the leakage default)."""
    from medenc.data.leakage import DEFAULT_THRESHOLD

    ap = argparse.ArgumentParser(
        description="Prepare the training, validation and test sets from the raw data."
    )
    ap.add_argument(
        "--leakage-threshold",
        type=_threshold,  # argparse applies it to the default too: the environment's value is checked here
        default=os.environ.get("MEDENC_LEAKAGE_THRESHOLD", str(DEFAULT_THRESHOLD)),
        help="max allowed fraction of a test text's word 8-grams found in training texts (default 0.5)",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default: $PREPARED_DIR or data/prepared)"
    )
    ap.add_argument(
        "--accept-upstream",
        action="store_true",
        help="use raw files that differ from their pinned sha256 (a newer upstream version, on purpose); "
        "the manifest records them under upstream_accepted",
    )
    ap.add_argument(
        "--print-pins",
        action="store_true",
        help="print the pins of the raw files under $DATA_DIR as they are now, and write nothing",
    )
    if argv is None:  # the command line, and make's DATA_ARGS (only a script run has scripts/ on its path)
        from _cli import with_env_args

        argv = with_env_args(None, "MEDENC_DATA_ARGS")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prepare everything and print the counts table; exit 2 with the message on bad data or leakage."""
    args = parse_args(argv)
    # Progress lines (medenc.core.progress) are INFO log records: without a handler they would not show.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from medenc.core.paths import data_dir
    from medenc.data import pins
    from medenc.data.prepare import prepare
    from medenc.data.sources import REGISTRY
    from medenc.data.write import format_table

    try:
        if args.print_pins:
            print(pins.format_pins(data_dir(tuple(s.folder for s in REGISTRY))))
            return 0
        path, manifest = prepare(args.out, args.leakage_threshold, args.accept_upstream)
    except MedencError as e:
        return fail(e)
    print(format_table(manifest))
    for key, sha in manifest.get("upstream_accepted", {}).items():
        print(f"accepted, differs from its pin: {key} (sha256 {sha or 'missing'})")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
